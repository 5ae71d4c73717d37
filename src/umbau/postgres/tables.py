"""A table as the catalog describes it: found by its SQL name, its columns and its keys.

Names follow SQL identifier syntax (:func:`umbau.postgres.quoting.parse_qualified`):
``orders`` and ``app.orders`` fold to lower case, ``"Orders"`` keeps its case. When a
name is not found only because of its case, the error says which quoted name exists.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from umbau.errors import UsageError
from umbau.postgres.quoting import QualifiedName, parse_qualified

_PRIMARY_KEY = """
SELECT a.attname
FROM pg_index i
CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indrelid = %s AND i.indisprimary
ORDER BY k.ord
"""

# Unique, valid, non-partial indexes on plain columns that are all NOT NULL.
_UNIQUE_KEYS = """
SELECT array_agg(a.attname ORDER BY k.ord)
FROM pg_index i
CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indrelid = %s AND i.indisunique AND i.indisvalid AND i.indpred IS NULL
  AND i.indexprs IS NULL
GROUP BY i.indexrelid
HAVING bool_and(a.attnotnull)
"""

_COLUMNS = """
SELECT attname, format_type(atttypid, atttypmod)
FROM pg_attribute WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped ORDER BY attnum
"""

# Tables whose name differs from the one asked for only in case, in the named schema or
# (no schema given) in the schemas of the search path.
_SAME_BUT_CASE = """
SELECT n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND lower(c.relname) = lower(%(name)s)
  AND CASE WHEN %(schema)s::text IS NULL THEN n.nspname = ANY(current_schemas(false))
           ELSE lower(n.nspname) = lower(%(schema)s) END
ORDER BY array_position(current_schemas(false), n.nspname), 1, 2
LIMIT 1
"""


# pg_class.relkind (PostgreSQL docs, 53.11 "pg_class"): ordinary and partitioned tables
# hold rows; a name that resolves to anything else gets a message that says what it is.
_TABLE_KINDS = {"r", "p"}
_RELATION_KINDS = {"v": "a view", "m": "a materialized view", "S": "a sequence",
                   "i": "an index", "I": "a partitioned index", "f": "a foreign table",
                   "c": "a composite type"}


@dataclass(frozen=True)
class Table:
    """A table found in the catalog: its oid and its name as SQL (quoted where needed)."""

    oid: int
    sql_name: str


def find_table(conn: psycopg.Connection, text: str) -> Table:
    """Resolve ``text`` (SQL identifier syntax) to a table, as PostgreSQL would.

    Raises UsageError for bad syntax (``a.b.c.d``, a stray quote) and for a table that
    does not exist, with "did you mean" when only the case differs (PostgreSQL docs,
    4.1.1 "Identifiers and Key Words": unquoted names fold to lower case).
    """
    name = parse_qualified(text, what="table")
    row = conn.execute("""SELECT c.oid, c.oid::regclass::text, c.relkind FROM pg_class c
                          WHERE c.oid = to_regclass(%s)""", (name.sql,)).fetchone()
    if row is not None and row[2] not in _TABLE_KINDS:
        what = _RELATION_KINDS.get(row[2], "not a table")
        raise UsageError(f"{text!r} is {what}, not a table: name the table itself")
    if row is not None:
        return Table(int(row[0]), str(row[1]))
    hint = _same_but_case(conn, name)
    raise UsageError(f"table {text!r} does not exist{hint}: check the name (schema.table, "
                     'quoted where the case matters: app."Orders") and the database URL')


def _same_but_case(conn: psycopg.Connection, name: QualifiedName) -> str:
    row = conn.execute(_SAME_BUT_CASE, {"name": name.name, "schema": name.schema}).fetchone()
    if row is None:
        return ""
    found = QualifiedName(row[0] if name.schema is not None else None, row[1])
    return f"; did you mean '{found}'?"


def column_types(conn: psycopg.Connection, oid: int) -> dict[str, str]:
    """Column name -> ``format_type`` of every live column, in table order."""
    return {r[0]: r[1] for r in conn.execute(_COLUMNS, (oid,))}


def primary_key(conn: psycopg.Connection, oid: int) -> list[str]:
    """The primary key's columns in index order; empty when there is none."""
    return [r[0] for r in conn.execute(_PRIMARY_KEY, (oid,))]


def unique_keys(conn: psycopg.Connection, oid: int) -> list[tuple[str, ...]]:
    """Column lists of the valid, non-partial unique indexes on NOT NULL plain columns."""
    return [tuple(r[0]) for r in conn.execute(_UNIQUE_KEYS, (oid,))]
