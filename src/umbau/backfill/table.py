"""The backfilled table as seen in the catalog, and the keyset SQL built for it.

Key values travel as text (``key::text`` out, ``%s::type`` in) so that any key type
that PostgreSQL can order (integers, uuid, text, timestamps, composites of them)
pages the same way, and checkpoints can be stored in one ``text[]`` column.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from psycopg import sql

from umbau.errors import NoUsableKey
from umbau.postgres import tables


@dataclass(frozen=True)
class TableInfo:
    """A table, its key columns (in index order) and the types of all its columns."""

    oid: int
    name: str
    key: tuple[str, ...]
    types: dict[str, str]

    @property
    def ident(self) -> sql.Composable:
        return sql.SQL(self.name)  # regclass text is already quoted as needed

    def key_cols(self, prefix: str | None = None) -> sql.Composable:
        parts = [sql.Identifier(prefix, k) if prefix else sql.Identifier(k) for k in self.key]
        return sql.SQL(", ").join(parts)

    def key_text(self) -> sql.Composable:
        # Aliased: an output column named like the key would make ORDER BY sort the text.
        return sql.SQL(", ").join(sql.SQL("{}::text AS {}").format(
            sql.Identifier(k), sql.Identifier(f"_key{i}")) for i, k in enumerate(self.key))

    def key_values(self, values: Sequence[str]) -> tuple[sql.Composable, list[str]]:
        """``(%s::t1, %s::t2)`` and its parameters, for comparing with the key."""
        casts = [sql.SQL("%s::{}").format(sql.SQL(self.types[k])) for k in self.key]
        return sql.SQL("({})").format(sql.SQL(", ").join(casts)), list(values)

    def range_condition(self, after: Sequence[str] | None,
                        upto: Sequence[str] | None) -> tuple[sql.Composable, list[str]]:
        """``(key) > (after) AND (key) <= (upto)``; a missing bound is open."""
        parts: list[sql.Composable] = []
        params: list[str] = []
        key = sql.SQL("({})").format(self.key_cols())
        for bound, op in ((after, ">"), (upto, "<=")):
            if bound is not None:
                values, extra = self.key_values(bound)
                parts.append(sql.SQL("{} {} {}").format(key, sql.SQL(op), values))
                params += extra
        if not parts:
            return sql.SQL("TRUE"), []
        return sql.SQL(" AND ").join(parts), params


def user_sql(text: str) -> sql.Composable:
    """A SQL fragment from the backfill's definition, embedded as is. ``%`` is doubled
    because every query that embeds one is executed with a parameter list."""
    return sql.SQL(f"({text})".replace("%", "%%"))


def inspect_table(conn: psycopg.Connection, table: str,
                  key: Sequence[str] | None = None) -> TableInfo:
    """Resolve the table (SQL identifier syntax) and its key.

    Raises UsageError (bad name, no such table) or :class:`NoUsableKey`.
    """
    found = tables.find_table(conn, table)
    oid, name = found.oid, found.sql_name
    types = tables.column_types(conn, oid)
    if key:
        missing = [k for k in key if k not in types]
        if missing:
            raise NoUsableKey(f"{name} has no column {', '.join(missing)}: "
                              "fix key= of the backfill")
        if tuple(key) not in tables.unique_keys(conn, oid):
            raise NoUsableKey(
                f"key ({', '.join(key)}) of {name} is not a unique, NOT NULL, non-partial index: "
                "use the primary key or create such a unique index first")
        return TableInfo(oid, name, tuple(key), types)
    pk = tables.primary_key(conn, oid)
    if not pk:
        raise NoUsableKey(
            f"{name} has no primary key: add one, or name a unique NOT NULL key with key=")
    return TableInfo(oid, name, tuple(pk), types)
