"""Who blocks a migration: the sessions named by ``pg_blocking_pids()``.

A lock timeout cancels the waiting statement, and with it the wait that
``pg_blocking_pids()`` reports: by the time the error arrives nobody is blocked
any more. :class:`BlockerWatch` therefore looks while the step still waits, from
a connection of its own, once a step has run for a quarter of ``lock_timeout``.
Sources: PostgreSQL docs, "System Information Functions" (``pg_blocking_pids``),
"The Cumulative Statistics System" (``pg_stat_activity``), "Server Signaling
Functions" (``pg_cancel_backend``).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from umbau.postgres.connect import connect

_BLOCKERS_SQL = text(
    """
    SELECT a.pid, a.usename, a.application_name, a.state,
           extract(epoch FROM now() - a.xact_start), a.query_start, a.query
    FROM pg_stat_activity a
    WHERE a.pid = ANY(pg_blocking_pids(:pid))
    ORDER BY a.xact_start NULLS LAST
    """
)

# Sessions whose transaction is older than a limit and that hold a lock on one of the
# named tables (any mode: even ACCESS SHARE blocks the ACCESS EXCLUSIVE of DDL).
_OLD_HOLDERS_SQL = text(
    """
    SELECT DISTINCT a.pid, a.usename, a.application_name, a.state,
           extract(epoch FROM now() - a.xact_start), a.query_start, a.query
    FROM pg_locks l
    JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.granted AND l.locktype = 'relation'
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND l.relation = ANY(CAST(:oids AS oid[]))
      AND a.pid <> pg_backend_pid()
      AND a.xact_start < now() - make_interval(secs => :older)
    """
)


@dataclass(frozen=True)
class Blocker:
    """One session that holds a lock someone else waits for."""

    pid: int
    user: str | None
    application: str | None
    state: str | None
    transaction_age_s: float | None
    query_start: datetime | None
    query: str | None

    def describe(self) -> str:
        """``pid 4711 (user app, application psql, idle in transaction, transaction 35s
        old, query since 12:00:01: UPDATE orders ...)``"""
        age = "no transaction" if self.transaction_age_s is None else \
            f"transaction {self.transaction_age_s:.0f}s old"
        since = f"{self.query_start:%H:%M:%S}" if self.query_start else "?"
        query = " ".join((self.query or "").split())[:80]
        return (f"pid {self.pid} (user {self.user or '?'}, application "
                f"{self.application or '?'}, {self.state or '?'}, {age}, "
                f"query since {since}: {query})")

    def as_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "user": self.user, "application": self.application,
                "state": self.state, "transaction_age_s": self.transaction_age_s,
                "query_start": self.query_start.isoformat() if self.query_start else None,
                "query": self.query}


def _blocker(row: Sequence[Any]) -> Blocker:
    age = None if row[4] is None else float(row[4])
    return Blocker(int(row[0]), row[1], row[2], row[3], age, row[5], row[6])


def blockers_of(conn: Connection, pid: int) -> list[Blocker]:
    """The sessions that block backend ``pid`` right now, oldest transaction first."""
    return [_blocker(r) for r in conn.execute(_BLOCKERS_SQL, {"pid": pid})]


def old_lock_holders(conn: Connection, tables: Iterable[str],
                     older_than: float) -> list[Blocker]:
    """Sessions in a transaction older than ``older_than`` seconds that hold a lock on
    one of ``tables`` (names as ``to_regclass`` reads them; missing tables are skipped)."""
    oids = [o for o in (conn.execute(text("SELECT to_regclass(:t)::oid"), {"t": t}).scalar()
                        for t in tables) if o is not None]
    if not oids:
        return []
    rows = conn.execute(_OLD_HOLDERS_SQL, {"oids": oids, "older": older_than})
    return [_blocker(r) for r in rows]


def cancel(conn: Connection, pids: Iterable[int]) -> list[int]:
    """``pg_cancel_backend`` each pid (their current statement only, the session lives
    on); returns the pids that were signalled."""
    done = []
    for pid in pids:
        if conn.execute(text("SELECT pg_cancel_backend(:p)"), {"p": pid}).scalar():
            done.append(pid)
    return done


def describe_all(blockers: Sequence[Blocker]) -> str:
    return "; ".join(b.describe() for b in blockers)


class BlockerWatch:
    """Remembers who blocked backend ``pid`` while a step waits on a lock.

    One thread per run; it sleeps until the step in progress has run for ``after``
    seconds and only then connects (so fast steps cost nothing), polling every
    ``after / 2`` seconds. :meth:`take` returns (and forgets) what it saw last.
    """

    def __init__(self, url: str, pid: int, after: float) -> None:
        self.url = url
        self.pid = pid
        self.after = after
        self._step_began: float | None = None
        self._seen: list[Blocker] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="umbau-blockers", daemon=True)

    def __enter__(self) -> BlockerWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def step_started(self) -> None:
        with self._lock:
            self._step_began = time.monotonic()
            self._seen = []

    def take(self) -> list[Blocker]:
        with self._lock:
            seen, self._seen = self._seen, []
            return seen

    def _due(self) -> bool:
        began = self._step_began
        return began is not None and time.monotonic() - began >= self.after

    def _loop(self) -> None:
        with contextlib.ExitStack() as stack:
            conn: Connection | None = None
            try:
                while not self._stop.wait(self.after / 2):
                    if not self._due():
                        continue
                    if conn is None:  # connect only once a step is slow
                        conn = stack.enter_context(connect(self.url, autocommit=True))
                    self._remember(blockers_of(conn, self.pid))
            except Exception:  # a watch that cannot look must not stop the migration
                pass

    def _remember(self, found: list[Blocker]) -> None:
        if found:
            with self._lock:
                self._seen = found
