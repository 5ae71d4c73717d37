"""The catalog questions the helpers ask before acting, so that a rerun after a crash
finds its own leftovers (PostgreSQL docs, "Chapter 53. System Catalogs")."""

from __future__ import annotations

from dataclasses import dataclass

from umbau.ops._runtime import Runtime


@dataclass(frozen=True)
class ColumnInfo:
    type: str  # format_type(), e.g. "numeric(5,4)"
    not_null: bool


def index_valid(rt: Runtime, index: str) -> bool | None:
    """``pg_index.indisvalid`` of the index (schema-qualified text), None if absent."""
    found: bool | None = rt.scalar(
        "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)", (index,))
    return found


def constraint_validated(rt: Runtime, table: str, name: str) -> bool | None:
    """``pg_constraint.convalidated`` of the table's constraint, None if absent."""
    found: bool | None = rt.scalar(
        "SELECT convalidated FROM pg_constraint WHERE conrelid = to_regclass(%s) "
        "AND conname = %s", (table, name))
    return found


def column(rt: Runtime, table: str, name: str) -> ColumnInfo | None:
    found = rt.rows(
        "SELECT format_type(atttypid, atttypmod), attnotnull FROM pg_attribute "
        "WHERE attrelid = to_regclass(%s) AND attname = %s AND attnum > 0 "
        "AND NOT attisdropped", (table, name))
    return ColumnInfo(found[0][0], bool(found[0][1])) if found else None


def has_trigger(rt: Runtime, table: str, name: str) -> bool:
    return bool(rt.scalar("SELECT count(*) FROM pg_trigger WHERE tgrelid = to_regclass(%s) "
                          "AND tgname = %s", (table, name)))


def table_exists(rt: Runtime, table: str) -> bool:
    return rt.scalar("SELECT to_regclass(%s)", (table,)) is not None


def has_rows(rt: Runtime, table: str) -> bool:
    """Whether the table holds any row (reads one page at most)."""
    return bool(rt.scalar(f"SELECT EXISTS (SELECT 1 FROM {table})"))


def server_version(rt: Runtime) -> int:
    return int(rt.scalar("SELECT current_setting('server_version_num')::int"))
