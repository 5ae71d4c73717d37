"""The migrator lock: a session-level advisory lock on a dedicated connection.

It is taken by polling ``pg_try_advisory_lock`` with a bounded wait, never with a
blocking ``pg_advisory_lock``: a blocked waiter holds a snapshot that makes a
``CREATE INDEX CONCURRENTLY`` in the lock holder wait for it, a deadlock that
PostgreSQL cannot detect. The lock is released when the connection closes, so
a killed migrator never leaves it behind.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.engine import Connection

from umbau.errors import LockWaitExceeded
from umbau.postgres.connect import connect, watch_client

# Two int4 keys: 'umba' and the lock's purpose. Advisory locks are per database.
LOCK_CLASS = 0x756D6261
MIGRATE_LOCK = 1


@dataclass(frozen=True)
class LockHolder:
    pid: int
    application: str
    client: str | None
    since: datetime | None

    def describe(self) -> str:
        since = self.since.strftime("%Y-%m-%d %H:%M:%S %Z").strip() if self.since else "?"
        client = self.client or "local socket"
        app = self.application or "unknown program"
        return f"pid {self.pid} ({app}, from {client}) since {since}"


_HOLDER_SQL = text(
    """
    SELECT a.pid, a.application_name, host(a.client_addr), a.state_change
    FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.locktype = 'advisory' AND l.granted
      AND l.classid = :classid AND l.objid = :objid AND l.objsubid = 2
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
    """
)


def lock_holder(conn: Connection, purpose: int = MIGRATE_LOCK) -> LockHolder | None:
    row = conn.execute(_HOLDER_SQL, {"classid": LOCK_CLASS, "objid": purpose}).first()
    if row is None:
        return None
    return LockHolder(pid=row[0], application=row[1], client=row[2], since=row[3])


@contextmanager
def migrator_lock(
    url: str,
    wait: float | None,
    on_wait: Callable[[LockHolder | None, float], None] | None = None,
    purpose: int = MIGRATE_LOCK,
) -> Iterator[None]:
    """Hold the lock for the duration of the block, waiting at most ``wait`` seconds.

    ``on_wait(holder, waited_s)`` is called every 30 s while another session holds it;
    raises :class:`LockWaitExceeded` (naming the holder) when ``wait`` runs out.
    """
    with connect(url, autocommit=True) as conn:
        watch_client(conn)
        _wait_for_lock(conn, wait, on_wait, purpose)
        try:
            yield
        finally:
            with suppress(Exception):
                conn.execute(
                    text("SELECT pg_advisory_unlock(:c, :o)"), {"c": LOCK_CLASS, "o": purpose}
                )


def _wait_for_lock(conn: Connection, wait: float | None,
                   on_wait: Callable[[LockHolder | None, float], None] | None,
                   purpose: int) -> None:
    """Poll pg_try_advisory_lock with backoff (50 ms doubling to 1 s) until it is ours."""
    deadline = time.monotonic() + (wait or 0.0)
    started = time.monotonic()
    delay = 0.05
    last_report = -1e9
    while not conn.execute(text("SELECT pg_try_advisory_lock(:c, :o)"),
                           {"c": LOCK_CLASS, "o": purpose}).scalar():
        holder = lock_holder(conn, purpose)
        now = time.monotonic()
        if now >= deadline:
            who = holder.describe() if holder else "a session that has just let go"
            raise LockWaitExceeded(
                f"another migrator held the lock for longer than the lock wait "
                f"({now - started:.0f}s): {who}; wait for it to finish, or stop it "
                "and rerun"
            )
        if on_wait is not None and now - last_report >= 30:
            on_wait(holder, now - started)
            last_report = now
        time.sleep(min(delay, max(0.0, deadline - now)))
        delay = min(delay * 2, 1.0)
