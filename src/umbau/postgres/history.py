"""The ``umbau_history`` table: one row per revision step."""

from __future__ import annotations

import functools
import getpass
import socket
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from umbau._version import __version__
from umbau.postgres.quoting import quote_dotted

HOST = socket.gethostname()


def ensure_table(conn: Connection, table: str) -> None:
    """Create the history table if it is missing (call under the migrator lock)."""
    conn.exec_driver_sql(
        f"""
        CREATE TABLE IF NOT EXISTS {quote_dotted(table)} (
            id bigserial PRIMARY KEY,
            revision text NOT NULL,
            down_revision text,
            direction text NOT NULL,
            message text,
            started_at timestamptz NOT NULL,
            finished_at timestamptz NOT NULL,
            duration_ms double precision NOT NULL,
            attempts integer NOT NULL DEFAULT 1,
            outcome text NOT NULL,
            error text,
            umbau_version text NOT NULL,
            host text,
            os_user text,
            db_user text NOT NULL DEFAULT current_user,
            checksum text
        )
        """
    )


def table_exists(conn: Connection, table: str) -> bool:
    found = conn.execute(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": quote_dotted(table)})
    return bool(found.scalar())


@dataclass(frozen=True)
class HistoryRow:
    id: int
    revision: str
    down_revision: str | None
    direction: str
    message: str | None
    started_at: datetime
    finished_at: datetime
    duration_ms: float
    attempts: int
    outcome: str
    error: str | None
    umbau_version: str
    host: str | None
    os_user: str | None
    db_user: str
    checksum: str | None

    def as_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["started_at"] = self.started_at.isoformat()
        data["finished_at"] = self.finished_at.isoformat()
        return data


def record(
    conn: Connection,
    table: str,
    *,
    revision: str,
    down_revision: str | None,
    direction: str,
    message: str | None,
    started_at: datetime,
    finished_at: datetime,
    attempts: int,
    outcome: str,
    error: str | None = None,
    checksum: str | None = None,
) -> None:
    # Driver-level SQL, built once per table: this runs once per revision, and going
    # through text() costs about 0.15 ms of client time per call (see docs/benchmarks.md).
    conn.exec_driver_sql(
        _insert_sql(table),
        {
            "revision": revision,
            "down_revision": down_revision,
            "direction": direction,
            "message": message,
            "started_at": started_at,
            "finished_at": finished_at,
            "duration_ms": (finished_at - started_at).total_seconds() * 1000,
            "attempts": attempts,
            "outcome": outcome,
            "error": error,
            "version": __version__,
            "host": HOST,
            "os_user": _os_user(),
            "checksum": checksum,
        },
    )


@functools.lru_cache(maxsize=8)
def _insert_sql(table: str) -> str:
    name = quote_dotted(table).replace("%", "%%")  # a literal % in pyformat SQL
    return (
        f"INSERT INTO {name} (revision, down_revision, direction, message, "
        "started_at, finished_at, duration_ms, attempts, outcome, error, umbau_version, host, "
        "os_user, checksum) VALUES (%(revision)s, %(down_revision)s, %(direction)s, "
        "%(message)s, %(started_at)s, %(finished_at)s, %(duration_ms)s, %(attempts)s, "
        "%(outcome)s, %(error)s, %(version)s, %(host)s, %(os_user)s, %(checksum)s)"
    )


@functools.lru_cache(maxsize=1)
def _os_user() -> str | None:
    try:
        return getpass.getuser()
    except Exception:
        return None


def read(conn: Connection, table: str, limit: int | None = None,
         offset: int = 0) -> list[HistoryRow]:
    """The newest rows first, skipping ``offset``; empty when the table does not exist."""
    if not table_exists(conn, table):
        return []
    sql = (
        "SELECT id, revision, down_revision, direction, message, started_at, finished_at, "
        "duration_ms, attempts, outcome, error, umbau_version, host, os_user, db_user, "
        f"checksum FROM {quote_dotted(table)} ORDER BY id DESC"
    )
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    if offset:
        sql += f" OFFSET {int(offset)}"
    return [HistoryRow(*row) for row in conn.exec_driver_sql(sql)]


def count(conn: Connection, table: str) -> int:
    """How many rows the history table holds (0 when it does not exist)."""
    if not table_exists(conn, table):
        return 0
    return int(conn.exec_driver_sql(f"SELECT count(*) FROM {quote_dotted(table)}").scalar_one())
