"""Health-aware throttling: hold batches while the server is under strain.

Three signals, each with its limit in ``[tool.umbau.backfill]`` (see
:mod:`umbau.postgres.health` for how each is read): replica lag
(``max_replica_lag``), the age of the oldest open transaction (``max_transaction_age``:
dead rows that the backfill leaves cannot be vacuumed while it runs) and a vacuum running
on the table (``hold_during_autovacuum``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import psycopg

from umbau.backfill.options import Options
from umbau.postgres import health


class Throttle:
    """Reads the signals at most once per ``health_interval`` and says why to hold."""

    def __init__(self, options: Options, table_oid: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.options = options
        self.table_oid = table_oid
        self.clock = clock
        self.checked_at: float | None = None
        self.reason: str | None = None

    def check(self, conn: psycopg.Connection, *, fresh: bool = False) -> str | None:
        """Why batches should wait now (one line), or None to go on."""
        now = self.clock()
        if fresh or self.checked_at is None or now - self.checked_at >= \
                self.options.health_interval:
            self.checked_at = now
            self.reason = self._read(conn)
        return self.reason

    def _read(self, conn: psycopg.Connection) -> str | None:
        for read in (self._lag, self._old_transaction, self._vacuum):
            reason = read(conn)
            if reason is not None:
                return reason
        return None

    def _lag(self, conn: psycopg.Connection) -> str | None:
        limit = self.options.max_replica_lag
        lag = health.replica_lag(conn) if limit is not None else None
        if limit is None or lag is None or lag <= limit:
            return None
        return f"replica lag {lag:.1f} s > {limit:g} s"

    def _old_transaction(self, conn: psycopg.Connection) -> str | None:
        limit = self.options.max_transaction_age
        oldest = health.oldest_transaction(conn) if limit is not None else None
        if limit is None or oldest is None or oldest.age <= limit:
            return None
        app = f" ({oldest.application})" if oldest.application else ""
        return (f"transaction of pid {oldest.pid}{app} open for {oldest.age:.0f} s > "
                f"{limit:g} s")

    def _vacuum(self, conn: psycopg.Connection) -> str | None:
        if not self.options.hold_during_autovacuum:
            return None
        kind = health.vacuum_on(conn, self.table_oid)
        return None if kind is None else f"{kind} runs on the table"
