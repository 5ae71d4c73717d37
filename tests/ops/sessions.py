"""Second and third sessions for the tests: a blocker holding a lock, a watcher reading
``pg_locks``, an upgrade running in a thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from umbau.postgres.connect import normalize_url


def dsn(url: str) -> str:
    return str(normalize_url(url).set(drivername="postgresql").render_as_string(
        hide_password=False))


@contextmanager
def session(url: str, *, autocommit: bool = True) -> Iterator[psycopg.Connection]:
    with psycopg.connect(dsn(url), autocommit=autocommit) as conn:
        yield conn


@contextmanager
def open_write(url: str, table: str = "docs") -> Iterator[psycopg.Connection]:
    """A transaction that has written to ``table`` and stays open (ROW EXCLUSIVE held):
    a concurrent index build waits for it."""
    with session(url, autocommit=False) as conn:
        conn.execute(f"UPDATE {table} SET id = id WHERE id = 1")
        yield conn
        conn.rollback()


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting after {timeout}s")


def waiting_backend(url: str, query_start: str, *, waiting: bool = True) -> int | None:
    """The pid of the backend running a statement that starts with ``query_start``,
    while it waits on a lock (``waiting=False``: while it runs at all)."""
    wait = " AND wait_event_type = 'Lock'" if waiting else " AND state = 'active'"
    with session(url) as conn:
        row = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND query LIKE %s" + wait, (query_start + "%",)).fetchone()
    return int(row[0]) if row else None


def locks_of(url: str, pid: int, table: str = "docs") -> set[tuple[str, bool]]:
    """(mode, granted) of ``pid``'s locks on ``table`` (from a session of its own)."""
    with session(url) as conn:
        rows = conn.execute("SELECT mode, granted FROM pg_locks WHERE pid = %s AND "
                            "relation = to_regclass(%s)", (pid, table)).fetchall()
    return {(r[0], bool(r[1])) for r in rows}


def insert_quickly(url: str, new_id: int) -> float:
    """Insert one row under a 500 ms lock_timeout; returns the seconds it took."""
    with session(url) as conn:
        conn.execute("SET lock_timeout = '500ms'")
        began = time.perf_counter()
        conn.execute("INSERT INTO docs (id, owner_id, ocr_text, score, code) "
                     "VALUES (%s, 1, 'w', 0.1, 'w')", (new_id,))
        return time.perf_counter() - began


class Background(threading.Thread):
    """Runs ``fn`` in a thread; ``result()`` returns its value or raises its error."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.fn = fn
        self.value: Any = None
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self.value = self.fn()
        except BaseException as exc:  # handed to the test thread
            self.error = exc

    def result(self, timeout: float = 60.0) -> Any:
        self.join(timeout)
        assert not self.is_alive(), "the background upgrade did not finish"
        if self.error is not None:
            raise self.error
        return self.value
