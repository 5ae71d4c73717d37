"""What backup, restore and copy read from the catalog: the tables a dump holds (with
partitions folded into their root), sizes, row counts, foreign keys, columns, sequences,
the server's version and the revision in Alembic's version table.

PostgreSQL docs: "53.11 pg_class", "53.32 pg_namespace", "53.13 pg_constraint",
"9.27.7 Database Object Management Functions" (``pg_total_relation_size``,
``pg_partition_tree``, ``pg_partition_root``).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from umbau.errors import UsageError
from umbau.postgres.quoting import QualifiedName, parse_qualified, quote_ident

TABLES_SQL = """
    SELECT n.nspname, c.relname,
           CASE WHEN c.relkind = 'p'
                THEN (SELECT coalesce(sum(pg_total_relation_size(t.relid)), 0)
                      FROM pg_partition_tree(c.oid) t)::bigint
                ELSE pg_total_relation_size(c.oid) END,
           CASE WHEN c.relkind = 'p'
                THEN (SELECT coalesce(sum(greatest(p.reltuples, 0)), 0)
                      FROM pg_partition_tree(c.oid) t JOIN pg_class p ON p.oid = t.relid)::bigint
                ELSE c.reltuples::bigint END,
           c.relkind = 'p'
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
      AND NOT c.relispartition
    ORDER BY 1, 2
"""
COLUMNS_SQL = """
    SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull
    FROM pg_attribute a
    WHERE a.attrelid = CAST(:rel AS regclass) AND a.attnum > 0 AND NOT a.attisdropped
      AND a.attgenerated = ''
    ORDER BY a.attnum
"""
# Top-level foreign keys only (the copies PostgreSQL keeps on partitions have a
# conparentid), with partitions folded into their root, as tables() lists them.
FOREIGN_KEYS_SQL = """
    SELECT cn.nspname || '.' || c.relname, rn.nspname || '.' || r.relname
    FROM pg_constraint k
    JOIN pg_class c ON c.oid = coalesce(pg_partition_root(k.conrelid), k.conrelid)
    JOIN pg_namespace cn ON cn.oid = c.relnamespace
    JOIN pg_class r ON r.oid = coalesce(pg_partition_root(k.confrelid), k.confrelid)
    JOIN pg_namespace rn ON rn.oid = r.relnamespace
    WHERE k.contype = 'f' AND k.conparentid = 0
"""
PARTITIONS_SQL = """
    SELECT n.nspname, c.relname FROM pg_partition_tree(CAST(:rel AS regclass)) t
    JOIN pg_class c ON c.oid = t.relid JOIN pg_namespace n ON n.oid = c.relnamespace
"""
SEQUENCES_SQL = "SELECT schemaname, sequencename FROM pg_sequences"


def qualified(schema: str, table: str) -> str:
    """``"schema"."table"``, both parts quoted."""
    return f"{quote_ident(schema)}.{quote_ident(table)}"


@dataclass(frozen=True)
class TableInfo:
    """A table as backups see it: partitions are folded into their (top) parent, whose
    size, estimate and rows are those of the whole partition tree."""

    schema: str
    name: str
    bytes: int
    estimate: int
    partitioned: bool = False

    @property
    def qualified(self) -> str:
        return qualified(self.schema, self.name)

    @property
    def rows_from(self) -> str:
        """What ``FROM`` reads this table's rows from: ``ONLY`` for a plain table (its
        inheritance children are listed themselves), the whole tree for a partitioned
        one (its partitions are not listed)."""
        return self.qualified if self.partitioned else f"ONLY {self.qualified}"

    @property
    def key(self) -> str:
        """``schema.table`` unquoted: the key of manifests and results."""
        return f"{self.schema}.{self.name}"

    @property
    def display(self) -> str:
        """The name in SQL identifier syntax, quoted only where needed; ``public.`` left
        out, as a name without a schema means it."""
        return str(QualifiedName(None if self.schema == "public" else self.schema, self.name))


def tables(conn: Connection) -> list[TableInfo]:
    """User tables (and partitioned parents), with size (bytes) and the planner's row
    estimate."""
    return [TableInfo(*row) for row in conn.execute(text(TABLES_SQL))]


def database_size(conn: Connection) -> int:
    """``pg_database_size`` of the current database, in bytes."""
    return int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one())


def server_major(conn: Connection) -> int:
    """The server's major version (``server_version_num`` // 10000, e.g. 16)."""
    return int(conn.exec_driver_sql("SHOW server_version_num").scalar_one()) // 10000


def server_version(conn: Connection) -> str:
    """The server's version as it reports it, e.g. ``16.4``."""
    return str(conn.exec_driver_sql("SHOW server_version").scalar_one()).split()[0]


def row_counts(conn: Connection, infos: Sequence[TableInfo],
               exact_below: int) -> dict[str, dict[str, Any]]:
    """Per table key: exact ``count(*)`` below ``exact_below`` bytes, the estimate above."""
    counts: dict[str, dict[str, Any]] = {}
    for info in infos:
        if info.bytes < exact_below:
            rows = conn.execute(text(f"SELECT count(*) FROM {info.rows_from}")).scalar_one()
            counts[info.key] = {"rows": int(rows), "exact": True, "bytes": info.bytes}
        else:
            counts[info.key] = {"rows": max(0, info.estimate), "exact": False,
                                "bytes": info.bytes}
    return counts


def exact_counts(conn: Connection, keys: Sequence[str]) -> dict[str, int]:
    """``count(*)`` of each ``schema.table`` key in ``keys`` that exists."""
    out: dict[str, int] = {}
    present = {t.key: t for t in tables(conn)}
    for key in keys:
        if key in present:
            out[key] = int(conn.execute(
                text(f"SELECT count(*) FROM {present[key].rows_from}")).scalar_one())
    return out


def version_table_revisions(conn: Connection, table: str = "alembic_version") -> tuple[str, ...]:
    """The revisions in Alembic's version table read directly; () when it is missing."""
    exists = conn.execute(text("SELECT to_regclass(:t) IS NOT NULL"),
                          {"t": quote_ident(table)}).scalar()
    if not exists:
        return ()
    rows = conn.execute(text(f"SELECT version_num FROM {quote_ident(table)} ORDER BY 1"))
    return tuple(r[0] for r in rows)


def user_table_names(conn: Connection) -> list[str]:
    """The keys (``schema.table``) of the user tables."""
    return [t.key for t in tables(conn)]


def foreign_keys(conn: Connection) -> list[tuple[str, str]]:
    """(referencing key, referenced key) of every top-level foreign key."""
    return [(str(c), str(r)) for c, r in conn.execute(text(FOREIGN_KEYS_SQL))]


def partitions(conn: Connection, info: TableInfo) -> list[str]:
    """The quoted names of ``info`` and every partition below it."""
    rows = conn.execute(text(PARTITIONS_SQL), {"rel": info.qualified})
    return [qualified(s, n) for s, n in rows]


def columns(conn: Connection, info: TableInfo) -> list[tuple[str, str, bool]]:
    """(name, SQL type, NOT NULL) of the stored columns of ``info``, in order (generated
    columns left out: COPY cannot write them)."""
    rows = conn.execute(text(COLUMNS_SQL), {"rel": info.qualified})
    return [(str(name), str(type_), bool(not_null)) for name, type_, not_null in rows]


def sequences(conn: Connection) -> set[tuple[str, str]]:
    """(schema, name) of every sequence the session can see."""
    return {(str(s), str(n)) for s, n in conn.execute(text(SEQUENCES_SQL))}


def resolve(infos: Sequence[TableInfo], name: str, *, where: str = "the database",
            option: str = "--table") -> TableInfo:
    """The table that ``name`` (SQL identifier syntax: ``orders``, ``app.orders``,
    ``app."Orders"``) names among ``infos``; without a schema, ``public``.

    Raises :class:`~umbau.errors.UsageError` for bad syntax, or a missing table, with
    "did you mean" when only the case differs (PostgreSQL folds unquoted names to lower
    case: docs "4.1.1. Identifiers and Key Words")."""
    parsed = parse_qualified(name)
    schema = parsed.schema or "public"
    for info in infos:
        if (info.schema, info.name) == (schema, parsed.name):
            return info
    raise UsageError(f"table {name} does not exist in {where}{_suggest(infos, schema, parsed)}: "
                     f"check {option} (SQL names: schema.table, quote mixed case: "
                     'app."Orders")')


def _suggest(infos: Sequence[TableInfo], schema: str, parsed: QualifiedName) -> str:
    same_case = [i for i in infos if i.schema.lower() == schema.lower()
                 and i.name.lower() == parsed.name.lower()]
    if same_case:
        return f"; did you mean '{same_case[0].display}'?"
    close = difflib.get_close_matches(f"{schema}.{parsed.name}", [i.key for i in infos], n=1)
    by_key = {i.key: i for i in infos}
    return f"; did you mean '{by_key[close[0]].display}'?" if close else ""


def export_snapshot(conn: Connection) -> str:
    """``pg_export_snapshot()`` of ``conn``'s transaction, for ``pg_dump --snapshot``
    (docs "9.28.5 Snapshot Synchronization Functions"); valid while it stays open."""
    return str(conn.execute(text("SELECT pg_export_snapshot()")).scalar_one())


def sequence_state(conn: Connection, schema: str, name: str) -> tuple[int, bool]:
    """(last_value, is_called) read from the sequence itself (``pg_sequences.last_value``
    is NULL after ``setval(…, false)`` and hides is_called)."""
    value, called = conn.execute(
        text(f"SELECT last_value, is_called FROM {qualified(schema, name)}")).one()
    return int(value), bool(called)


def set_sequence(conn: Connection, schema: str, name: str, value: int, called: bool) -> None:
    """``setval`` the sequence to (value, is_called)."""
    conn.execute(text("SELECT setval(CAST(:s AS regclass), :v, :c)"),
                 {"s": qualified(schema, name), "v": value, "c": called})


def role_names(conn: Connection) -> set[str]:
    """The names of the server's roles (``pg_roles``)."""
    return {str(r) for r in conn.execute(text("SELECT rolname FROM pg_roles")).scalars()}
