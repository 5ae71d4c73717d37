"""Running a backfill from a revision file.

A backfill must not run inside the revision's transaction: that transaction would
hold every changed row's lock until the revision commits (the blocking that batches
avoid), and no checkpoint would be durable before the end. Nor can it run on a
second connection while that transaction is open: the revision's uncommitted DDL
(say, the new column) is invisible there, and the ACCESS EXCLUSIVE lock the DDL took
would make every batch wait for the revision that waits for the batches.

So :func:`run_in_revision` uses Alembic's ``autocommit_block()``: it commits what
the revision did so far, runs each batch in its own short transaction on the same
connection (the lock and session settings umbau set up stay in force), and then
opens a new transaction for the rest of the revision and its version stamp. The
price is the same as for ``CREATE INDEX CONCURRENTLY``: the revision is no longer
atomic, so keep the schema change and the backfill in separate revisions, or make
the part before the backfill idempotent. If the backfill fails, the revision fails;
rerunning the upgrade resumes the backfill from its checkpoint.
"""

from __future__ import annotations

from typing import Any

from umbau.backfill.api import Backfill
from umbau.backfill.orchestrator import BackfillResult, run_backfill
from umbau.settings import Settings, load_settings


def run_in_revision(op: Any, backfill: Backfill,
                    settings: Settings | None = None) -> BackfillResult:
    """Run ``backfill`` from ``upgrade()``/``downgrade()``, outside the revision's transaction.

    ``settings`` default to the project's settings file (``[tool.umbau.backfill]``).
    """
    settings = settings or load_settings()
    context = op.get_context()
    with context.autocommit_block():
        driver = op.get_bind().connection.driver_connection
        return run_backfill(settings, backfill, connection=driver)
