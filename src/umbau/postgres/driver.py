"""Raw psycopg connections with umbau's session settings, and psycopg errors translated once.

SQLAlchemy connections come from :mod:`umbau.postgres.connect`; code that needs explicit
transaction control on the driver itself (backfill batches) opens its connections here,
and classifies the driver's errors with :func:`fault` instead of reading SQLSTATEs itself.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from umbau.errors import DatabaseError, UmbauError, UsageError
from umbau.postgres.connect import (
    APPLICATION_NAME,
    RETRYABLE_SQLSTATES,
    normalize_url,
    translate_connect_error,
)
from umbau.postgres.errors import describe_error

# SQLSTATE 57014 query_canceled: a statement_timeout, or pg_cancel_backend().
QUERY_CANCELED = "57014"

# The settings that shape ``value::text``: text written by one session (a checkpoint) is
# read back by others with their own PGDATESTYLE or database default, and a value that
# does not survive the round trip would be skipped or changed twice. ISO dates are also
# the only ones psycopg can load.
_TEXT_SETTINGS = {"DateStyle": "ISO, YMD", "IntervalStyle": "postgres",
                  "extra_float_digits": "3"}


class Fault(enum.Enum):
    """What a psycopg error means for the caller."""

    RETRY = "lock timeout or deadlock"      # 55P03, 40P01: try again later
    TIMEOUT = "statement timeout"           # 57014: try less work at once
    LOST = "connection lost"                # the session is gone: reconnect or stop
    INVALID = "invalid SQL or data"         # classes 42 and 22: fix the statement
    OTHER = "database error"


@contextmanager
def connect_raw(url: str, *, idle_in_transaction: float | None = 60.0,
                application_name: str = APPLICATION_NAME) -> Iterator[psycopg.Connection]:
    """An autocommit psycopg connection, closed afterwards.

    Autocommit: every transaction is an explicit ``conn.transaction()`` block, and a read
    outside one never leaves an implicit transaction open. TCP keepalives make a machine
    that vanishes (power loss) noticed within about a minute, and its row locks released.
    ``idle_in_transaction`` (seconds, None = off) ends a session stuck inside a
    transaction. Raises DatabaseError (and subclasses) when the connection fails.
    """
    parsed = normalize_url(url)
    conninfo = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        conn = psycopg.connect(conninfo, application_name=application_name[:63],
                               connect_timeout=10, autocommit=True, keepalives=1,
                               keepalives_idle=30, keepalives_interval=10, keepalives_count=3)
    except psycopg.OperationalError as exc:
        raise translate_connect_error(exc, parsed) from exc
    try:
        settings = dict(_TEXT_SETTINGS)
        settings["idle_in_transaction_session_timeout"] = _ms(idle_in_transaction)
        _set(conn, settings)
        yield conn
    finally:
        conn.close()


def set_timeouts(conn: psycopg.Connection, lock_timeout: float | None,
                 statement_timeout: float | None) -> None:
    """``lock_timeout`` and ``statement_timeout`` (seconds, None = off) for the session.

    On PostgreSQL 14+ also ``client_connection_check_interval``, so that a backend busy
    in a long statement ends within a second when its client dies (kill -9) instead of
    holding its row locks until the statement ends (PostgreSQL docs, 20.3 Connections
    and Authentication).
    """
    values = {"lock_timeout": _ms(lock_timeout), "statement_timeout": _ms(statement_timeout)}
    if conn.info.server_version >= 140000:
        values["client_connection_check_interval"] = "1000ms"
    _set(conn, values)


def _set(conn: psycopg.Connection, values: dict[str, str]) -> None:
    calls = ", ".join("set_config(%s, %s, false)" for _ in values)
    params = [part for item in values.items() for part in item]
    with conn.transaction():
        conn.execute(f"SELECT {calls}", params)


def _ms(seconds: float | None) -> str:
    return "0" if seconds is None else f"{max(1, round(seconds * 1000))}ms"


def fault(exc: BaseException, conn: psycopg.Connection | None = None) -> Fault:
    """Classify a psycopg error (PostgreSQL docs, Appendix A "Error Codes")."""
    if conn is not None and conn.broken:
        return Fault.LOST
    code = getattr(exc, "sqlstate", None) or ""
    if code in RETRYABLE_SQLSTATES:
        return Fault.RETRY
    if code == QUERY_CANCELED:
        return Fault.TIMEOUT
    if isinstance(exc, psycopg.OperationalError) and not code:
        return Fault.LOST
    if code[:2] in {"42", "22"}:
        return Fault.INVALID
    return Fault.OTHER


def translate(exc: BaseException, doing: str, conn: psycopg.Connection | None = None,
              todo: str = "rerun") -> UmbauError:
    """The umbau error for a psycopg error met while ``doing`` something; one line.

    A lost connection is a DatabaseError, invalid SQL a UsageError, a statement timeout
    a DatabaseError that names the setting; ``todo`` says what to do next.
    """
    kind = fault(exc, conn)
    reason = describe_error(exc)
    if kind is Fault.LOST:
        return DatabaseError(f"lost the database connection during {doing} ({reason}); {todo}")
    if kind is Fault.INVALID:
        return UsageError(f"{doing}: {reason}: fix the SQL")
    if kind is Fault.TIMEOUT:
        return DatabaseError(f"{doing} hit statement_timeout ({reason}): raise "
                             "statement_timeout (--statement-timeout) or try off-peak")
    return DatabaseError(f"{doing} failed ({reason}); {todo}")


@contextmanager
def database_errors(doing: str, todo: str = "rerun") -> Iterator[None]:
    """Turn any psycopg error raised inside into umbau's one-line error (see
    :func:`translate`), for library entry points: a session terminated by
    ``pg_terminate_backend``, a server restart or a lock timeout on a statement
    nobody wrapped is never a traceback. umbau's own errors pass unchanged."""
    try:
        yield
    except psycopg.Error as exc:
        raise translate(exc, doing, None, todo) from exc
