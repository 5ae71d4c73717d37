"""Connections, and the one place where driver errors become umbau errors."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.pool import NullPool

from umbau.errors import AuthenticationFailed, DatabaseError, DatabaseUnreachable, SettingsError

APPLICATION_NAME = f"umbau@{socket.gethostname()}:{os.getpid()}"[:63]

# SQLSTATEs that mean "try the revision again later".
LOCK_NOT_AVAILABLE = "55P03"
DEADLOCK_DETECTED = "40P01"
RETRYABLE_SQLSTATES = frozenset({LOCK_NOT_AVAILABLE, DEADLOCK_DETECTED})


_ASYNC_DRIVERS = {"postgresql+asyncpg", "postgresql+psycopg_async", "postgresql+aiopg"}


def _has_psycopg2() -> bool:
    import importlib.util

    return importlib.util.find_spec("psycopg2") is not None


def normalize_url(url: str) -> URL:
    """Parse a URL and pick psycopg 3 for driverless PostgreSQL URLs."""
    try:
        parsed = make_url(url)
    except Exception as exc:  # SQLAlchemy raises ArgumentError with the URL in it
        raise SettingsError(
            "database URL is not valid: use postgresql://user:password@host:port/database"
        ) from exc
    if parsed.drivername in {"postgresql", "postgres"} | _ASYNC_DRIVERS or (
        parsed.drivername == "postgresql+psycopg2" and not _has_psycopg2()
    ):
        # umbau's own connections are synchronous: an async application's URL
        # (asyncpg, psycopg_async) names the same database
        parsed = parsed.set(drivername="postgresql+psycopg")
    if not parsed.drivername.startswith("postgresql"):
        raise SettingsError(
            f"umbau works with PostgreSQL only, not {parsed.drivername!r}: "
            "use a postgresql:// URL"
        )
    return parsed


def describe(url: URL) -> str:
    """``host:port/database`` (or the socket folder), never the password."""
    host = url.host or url.query.get("host") or "localhost"
    if isinstance(host, tuple):
        host = host[0]
    port = url.port or 5432
    where = f"socket {host}" if str(host).startswith("/") else f"{host}:{port}"
    return f"{where} (database {url.database or 'default'})"


def create_engine(url: str, *, autocommit: bool = False) -> Engine:
    parsed = normalize_url(url)
    # prepare_threshold=None: migrations run each statement once or a few times, and
    # every DDL statement invalidates psycopg's prepared statements (DEALLOCATE ALL).
    connect_args = {"application_name": APPLICATION_NAME, "connect_timeout": 10,
                    "prepare_threshold": None}
    engine = sa.create_engine(parsed, poolclass=NullPool, connect_args=connect_args)
    if autocommit:
        engine = engine.execution_options(isolation_level="AUTOCOMMIT")
    return engine


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a driver error, looking through SQLAlchemy's wrapper."""
    orig = getattr(exc, "orig", exc)
    return getattr(orig, "sqlstate", None) or getattr(getattr(orig, "diag", None), "sqlstate", None)


def translate_connect_error(exc: BaseException, url: URL) -> DatabaseError:
    text = str(getattr(exc, "orig", exc))
    where = describe(url)
    user = url.username or "the default user"
    if "password authentication failed" in text or "no password supplied" in text:
        return AuthenticationFailed(
            f"password authentication failed for user {user} at {where}: "
            "check the user and password in the database URL"
        )
    missing_db = re.search(r'database "([^"]+)" does not exist', text)
    if missing_db:
        return DatabaseError(
            f"database {missing_db.group(1)!r} does not exist at {where}: "
            "create it (createdb) or fix the database URL"
        )
    if "role" in text and "does not exist" in text:
        return AuthenticationFailed(f"user {user} does not exist at {where}: fix the database URL")
    return DatabaseUnreachable(
        f"cannot reach PostgreSQL at {where}: {_first_reason(text)}; "
        "check that the server runs and the host and port in the URL"
    )


def _first_reason(text: str) -> str:
    for marker in ("Connection refused", "No such file or directory", "timeout expired",
                   "could not translate host name", "Name or service not known",
                   "Network is unreachable", "No route to host"):
        if marker.lower() in text.lower():
            return marker[0].lower() + marker[1:]
    line = text.strip().splitlines()[0] if text.strip() else "no answer"
    return re.sub(r"\s+", " ", line)[:160]


@contextmanager
def connect(url: str, *, autocommit: bool = False) -> Iterator[Connection]:
    """A connection that is closed afterwards; connect failures become umbau errors."""
    engine = create_engine(url, autocommit=autocommit)
    try:
        try:
            conn = engine.connect()
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            raise translate_connect_error(exc, engine.url) from exc
        try:
            yield conn
        finally:
            conn.close()
    finally:
        engine.dispose()


def set_timeouts(conn: Connection, lock_timeout: float | None,
                 statement_timeout: float | None) -> None:
    """Session-level timeouts, committed so that the connection is idle afterwards."""
    conn.exec_driver_sql(f"SET lock_timeout = {_ms(lock_timeout)}")
    conn.exec_driver_sql(f"SET statement_timeout = {_ms(statement_timeout)}")
    conn.commit()
    watch_client(conn)


def watch_client(conn: Connection) -> None:
    """Have the server end this session within a second when the client dies (kill -9).

    Without it a backend busy in a long statement holds its locks, and the migrator
    lock, until the statement ends. PostgreSQL 14+; ignored where not supported.
    """
    if conn.dialect.server_version_info and conn.dialect.server_version_info >= (14,):
        conn.exec_driver_sql("SET client_connection_check_interval = 1000")
        conn.commit()


def _ms(seconds: float | None) -> int:
    return 0 if seconds is None else max(1, round(seconds * 1000))
