"""The small commands on a backfill: a dry run, and status, pause, resume, cancel."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from umbau.backfill import state
from umbau.backfill.api import Backfill
from umbau.backfill.batch import Changer, sample_batch
from umbau.backfill.options import resolve
from umbau.backfill.orchestrator import count_rows, scanning
from umbau.backfill.table import inspect_table
from umbau.backfill.worker import open_session
from umbau.errors import BackfillError
from umbau.postgres.driver import connect_raw, database_errors
from umbau.settings import Settings


@dataclass
class DryRunResult:
    name: str
    table: str
    key: list[str]
    rows: int
    sample_rows: int
    sample_s: float
    estimate_s: float | None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "table": self.table, "key": self.key, "rows": self.rows,
                "sample_rows": self.sample_rows, "sample_s": round(self.sample_s, 4),
                "estimate_s": None if self.estimate_s is None else round(self.estimate_s, 1)}


def dry_run(settings: Settings, backfill: Backfill) -> DryRunResult:
    """Count the rows and time one sample batch that is rolled back; no state is written."""
    options = resolve(settings, backfill)
    with database_errors(f"backfill {backfill.name}: --dry-run"), open_session(settings) as conn:
        table = inspect_table(conn, backfill.table, backfill.key)
        changer = Changer(backfill, table)
        changer.check(conn)
        with scanning(conn, backfill.name, f"counting the rows of {table.name}"):
            rows, all_rows = count_rows(conn, backfill, table)
        sample_rows, seconds = sample_batch(conn, changer, options.batch_size)
    # The run pages over every key, not only the rows `where` selects: the sample
    # batch covered `batch_size` keys of them.
    scanned = min(options.batch_size, max(all_rows, 1))
    estimate = all_rows * seconds / scanned if seconds > 0 else None
    return DryRunResult(backfill.name, table.name, list(table.key), rows, sample_rows, seconds,
                        estimate)


def backfill_status(settings: Settings, name: str | None = None) -> list[state.BackfillState]:
    """The state of one backfill (BackfillError if unknown) or of all of them."""
    with database_errors("backfill status"), connect_raw(settings.require_database_url()) as conn:
        names = [name] if name else state.list_names(conn)
        found = [s for s in (state.load(conn, n) for n in names) if s is not None]
    if name and not found:
        raise BackfillError(f"no backfill named {name!r}: see `umbau backfill status` for the "
                            "known ones")
    return found


def _transition(settings: Settings, name: str, to: str, only_from: Sequence[str]) -> str:
    with database_errors(f"backfill {name}: marking it {to}"), \
            connect_raw(settings.require_database_url()) as conn:
        current = state.load(conn, name)
        if current is None:
            raise BackfillError(f"no backfill named {name!r}: see `umbau backfill status`")
        if current.status == to:
            return to
        if not state.set_status(conn, name, to, only_from=only_from):
            raise BackfillError(f"backfill {name} is {current.status}, it cannot become {to}: "
                                "see `umbau backfill status`")
    return to


def pause(settings: Settings, name: str) -> str:
    """Workers stop after their current batch; ``resume`` continues."""
    return _transition(settings, name, "paused", ["running"])


def resume(settings: Settings, name: str) -> str:
    """Mark a paused (or failed) backfill running again; run it to continue."""
    return _transition(settings, name, "running", ["paused", "failed"])


def cancel(settings: Settings, name: str) -> str:
    """Stop for good after the current batches; changed rows stay changed."""
    return _transition(settings, name, "cancelled", ["running", "paused", "failed"])


def stored_source(settings: Settings, name: str) -> str | None:
    """The ``module:attribute`` a backfill was started from, if the CLI started it."""
    return backfill_status(settings, name)[0].source
