"""What the server knows about tables and functions: sizes, live row counts, volatility.

Used by lint (how big is the table a finding locks, is a default's function volatile)
and by the upgrade gate (does the table exist here, how many rows does it hold).
Sources: PostgreSQL docs "9.27.7. Database Object Management Functions"
(``pg_total_relation_size``), "53.11. pg_class" (``reltuples``, ``relpages``) and
"53.39. pg_proc" (``provolatile``: ``i`` immutable, ``s`` stable, ``v`` volatile).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import text
from sqlalchemy.engine import Connection

from umbau.postgres.connect import LOCK_NOT_AVAILABLE, sqlstate
from umbau.postgres.quoting import QualifiedName


@dataclass(frozen=True)
class TableStats:
    """A table as the database sees it: exists, rows (estimate, or counted when few), bytes."""

    name: str
    exists: bool
    rows: int | None = None
    bytes: int | None = None
    counted: bool = False  # rows is an exact count (small tables), not pg_class's estimate
    at_least: bool = False  # the count stopped at its limit: the table holds more

    def rows_text(self) -> str:
        """``"42 rows"``, ``"at least 10,000 rows"``, ``"~1,234,567 rows"``."""
        if self.rows is None:
            return "? rows"
        prefix = "at least " if self.at_least else ("" if self.counted else "~")
        return f"{prefix}{self.rows:,} rows"

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "exists": self.exists, "rows": self.rows,
                "bytes": self.bytes, "rows_counted": self.counted, "rows_at_least": self.at_least}


_STATS_SQL = (
    "SELECT t.name, c.oid IS NOT NULL, c.reltuples::bigint, "
    "CASE WHEN c.oid IS NULL THEN NULL ELSE {size} END "
    "FROM unnest(CAST(:names AS text[]), CAST(:quoted AS text[])) AS t(name, quoted) "
    "LEFT JOIN pg_class c ON c.oid = to_regclass(t.quoted)"
)
_EXACT_SIZE = "pg_total_relation_size(c.oid)"
_ESTIMATED_SIZE = (
    "(c.relpages::bigint"
    " + COALESCE((SELECT relpages FROM pg_class WHERE oid = c.reltoastrelid), 0)"
    " + COALESCE((SELECT sum(i.relpages) FROM pg_index x JOIN pg_class i"
    " ON i.oid = x.indexrelid WHERE x.indrelid = c.oid), 0))"
    " * current_setting('block_size')::bigint"
)
# reads of the application's tables never wait long behind its ACCESS EXCLUSIVE locks
_LOCK_TIMEOUT = "SET LOCAL lock_timeout = '500ms'"


def quoted(name: str) -> str:
    """Lint's ``schema.table`` (or ``table``) as a quoted SQL name."""
    schema, dot, table = name.partition(".")
    return QualifiedName(schema, table).sql if dot else QualifiedName(None, name).sql


def table_stats(conn: Connection, names: Sequence[str], *,
                count_below: int = 0) -> dict[str, TableStats]:
    """Stats of ``names`` (lint's ``schema.table`` form), by name.

    Sizes in bytes from ``pg_total_relation_size`` (the catalog's page counts when a
    lock blocks it); rows from ``reltuples``, counted exactly (up to ``count_below``)
    where the estimate is below ``count_below`` or unknown (never analysed).
    """
    if not names:
        return {}
    params = {"names": list(names), "quoted": [quoted(n) for n in names]}
    rows, blocked = _sizes(conn, params)
    out = {}
    for name, exists, tuples, size in rows:
        estimate = int(tuples) if tuples is not None and tuples >= 0 else None
        out[name] = TableStats(name, bool(exists), estimate, size)
        # behind an application's lock a count would wait too: keep the estimate then
        if exists and count_below and not blocked and (estimate is None or estimate < count_below):
            counted = count_rows(conn, name, count_below)
            if counted is not None:
                out[name] = TableStats(name, True, counted, size, counted=True,
                                       at_least=counted >= count_below)
    conn.rollback()
    return out


def _sizes(conn: Connection, params: dict[str, Any]) -> tuple[list[Any], bool]:
    """The rows of the stats query, and whether a lock forced the catalog's estimate."""
    try:
        conn.exec_driver_sql(_LOCK_TIMEOUT)
        return list(conn.execute(text(_STATS_SQL.format(size=_EXACT_SIZE)), params).all()), False
    except sa.exc.OperationalError as exc:
        if sqlstate(exc) != LOCK_NOT_AVAILABLE:
            raise
        conn.rollback()  # the catalog's estimate needs no lock on the table
        rows = conn.execute(text(_STATS_SQL.format(size=_ESTIMATED_SIZE)), params).all()
        return list(rows), True


def count_rows(conn: Connection, name: str, limit: int) -> int | None:
    """Live rows of ``name``, counted up to ``limit`` (None when a lock blocks the read)."""
    conn.exec_driver_sql("SAVEPOINT umbau_count")
    try:
        conn.exec_driver_sql(_LOCK_TIMEOUT)
        sql = f"SELECT count(*) FROM (SELECT 1 FROM {quoted(name)} LIMIT :n) AS s"
        value = conn.execute(text(sql), {"n": limit}).scalar_one()
    except sa.exc.OperationalError as exc:
        if sqlstate(exc) != LOCK_NOT_AVAILABLE:
            raise
        conn.exec_driver_sql("ROLLBACK TO SAVEPOINT umbau_count")
        return None
    conn.exec_driver_sql("RELEASE SAVEPOINT umbau_count")
    return int(value)


_VOLATILITY_SQL = """
SELECT p.proname, max(p.provolatile::text)
FROM pg_proc p
GROUP BY p.proname
"""


def volatility(conn: Connection) -> dict[str, str]:
    """Every function name on the server -> ``"i"``, ``"s"`` or ``"v"``.

    Overloads of one name take the most volatile kind (``v`` > ``s`` > ``i``, which is
    also their text order), since lint sees the name, not the argument types.
    """
    rows = conn.execute(text(_VOLATILITY_SQL)).all()
    conn.rollback()
    return {str(name): str(kind) for name, kind in rows}


def server_version_num(conn: Connection) -> int:
    """``server_version_num``, e.g. 140003 (major 14, minor 3)."""
    return int(conn.exec_driver_sql("SHOW server_version_num").scalar_one())
