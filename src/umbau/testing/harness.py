"""A runner for hand-written migration tests: upgrade, downgrade, snapshot, fill rows.

The pytest fixture ``umbau_runner`` hands one out, bound to a throwaway database::

    def test_orders_keep_their_shop(umbau_runner):
        umbau_runner.upgrade("a1b2c3")
        umbau_runner.execute("INSERT INTO orders (id, shop_id) VALUES (1, 7)")
        umbau_runner.upgrade("head")
        assert umbau_runner.scalar("SELECT shop_id FROM orders WHERE id = 1") == 7
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from umbau import alembic_bridge as bridge
from umbau.postgres.connect import connect
from umbau.postgres.snapshot import Snapshot
from umbau.postgres.snapshot import take as take_snapshot
from umbau.runner import MigrateResult, migrate
from umbau.settings import Settings
from umbau.testing.data import RowGenerator
from umbau.testing.stairway import UMBAU_TABLES


class MigrationRunner:
    """Migrations and checks against one database (``settings.database_url``)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.url = settings.require_database_url()
        self.project = bridge.Project(settings, self.url)
        self.rows = RowGenerator()

    def upgrade(self, target: str = "heads") -> MigrateResult:
        """Upgrade through umbau's runner (lock, one transaction per revision, history)."""
        return migrate(self.settings, self.project, "upgrade", target)

    def downgrade(self, target: str = "-1") -> MigrateResult:
        return migrate(self.settings, self.project, "downgrade", target)

    def current(self) -> tuple[str, ...]:
        with self.connection() as conn:
            return bridge.current_heads(self.project, conn)

    def revisions(self) -> list[str]:
        """Every revision id, oldest first."""
        return [r.revision for r in self.project.revisions()]

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        with connect(self.url) as conn:
            yield conn

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        with self.connection() as conn:
            conn.execute(text(sql), dict(params or {}))
            conn.commit()

    def scalar(self, sql: str, params: Mapping[str, Any] | None = None) -> Any:
        with self.connection() as conn:
            return conn.execute(text(sql), dict(params or {})).scalar()

    def snapshot(self) -> Snapshot:
        """The schema now, without the version and umbau tables; ``a.diff(b)`` compares."""
        with self.connection() as conn:
            return take_snapshot(conn, set(UMBAU_TABLES) | {self.settings.history_table,
                                                             "alembic_version"})

    def fill(self) -> dict[str, int]:
        """Generated rows into every table; returns rows inserted per table."""
        shape = self.snapshot()
        with self.connection() as conn:
            inserted = self.rows.fill(conn, shape.tables, shape.tables)
            conn.commit()
        return inserted
