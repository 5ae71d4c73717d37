"""Catalog queries used by status, doctor, the upgrade plan and the runner."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection

from umbau.postgres.quoting import quote_ident


@dataclass(frozen=True)
class InvalidIndex:
    schema: str
    name: str
    table: str
    definition: str


def invalid_indexes(conn: Connection) -> list[InvalidIndex]:
    """Indexes left invalid by a failed CREATE INDEX CONCURRENTLY."""
    rows = conn.execute(
        text(
            """
            SELECT n.nspname, c.relname, t.relname, pg_get_indexdef(i.indexrelid)
            FROM pg_index i
            JOIN pg_class c ON c.oid = i.indexrelid
            JOIN pg_class t ON t.oid = i.indrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE NOT i.indisvalid
              AND n.nspname NOT IN ('pg_catalog', 'information_schema')
            ORDER BY 1, 2
            """
        )
    )
    return [InvalidIndex(*row) for row in rows]


def server_version(conn: Connection) -> int:
    """server_version_num, e.g. 150004."""
    return int(conn.exec_driver_sql("SHOW server_version_num").scalar_one())


def version_table_heads(conn: Connection, table: str = "alembic_version") -> tuple[str, ...]:
    """The revisions in Alembic's version table (on the search_path); () when it is missing.

    The rows in table order, as Alembic's ``MigrationContext.get_current_heads`` reads them.
    """
    found = conn.execute(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": quote_ident(table)})
    if not found.scalar():
        return ()
    rows = conn.execute(text(f"SELECT version_num FROM {quote_ident(table)}"))
    return tuple(row[0] for row in rows)

# Tables that make up a database's own schema: not those created by extensions
# (PostGIS's spatial_ref_sys), not catalogs; umbau's and Alembic's are left out below.
_USER_TABLES = text(
    """
    SELECT n.nspname, c.relname FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p')
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                      AND d.objid = c.oid AND d.deptype = 'e')
    ORDER BY 1, 2
    """
)


def own_tables(history_table: str) -> set[str]:
    """umbau's and Alembic's own tables, as display names (``public`` left out)."""
    from umbau.postgres import UMBAU_TABLES

    return {"alembic_version", history_table, *UMBAU_TABLES}


def user_tables(conn: Connection, history_table: str) -> list[str]:
    """The database's tables (``schema.name``, ``public`` left out), without extension-
    owned ones and without umbau's and Alembic's own."""
    own = own_tables(history_table)
    names = [name if schema == "public" else f"{schema}.{name}"
             for schema, name in conn.execute(_USER_TABLES)]
    return [n for n in names if n not in own]
