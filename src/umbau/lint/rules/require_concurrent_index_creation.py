"""CREATE INDEX without CONCURRENTLY on a table that already exists."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pglast import ast

from umbau.lint.context import LintContext, index_columns, relname
from umbau.lint.model import Hit, Rule
from umbau.lint.rules._helpers import existing, py_table


def check(node: Any, ctx: LintContext) -> Iterator[Hit]:
    if isinstance(node, ast.IndexStmt) and not node.concurrent:
        table = relname(node.relation)
        if existing(ctx, table):
            name = node.idxname or "the index"
            yield Hit(f"CREATE INDEX {name} on {table} blocks every write to {table} while the "
                      "index is built: create it CONCURRENTLY outside the transaction", table,
                      safe=_safe(node, table))


def _safe(node: Any, table: str) -> str:
    name = node.idxname or f"ix_{table.replace('.', '_')}"
    columns = index_columns(node)
    if not columns or len(columns) != len(node.indexParams or ()):  # expressions: plain SQL
        from umbau.sql import deparse

        sql = deparse(node).replace("CREATE INDEX", "CREATE INDEX CONCURRENTLY IF NOT EXISTS", 1)
        sql = sql.replace("CREATE UNIQUE INDEX", "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS")
        return f'''def upgrade():
    with op.get_context().autocommit_block():
        op.execute("{sql}")'''
    cols = ", ".join(f'"{c}"' for c in columns)
    unique = ", unique=True" if node.unique else ""
    return f'''def upgrade():
    # CONCURRENTLY cannot run in a transaction: leave umbau's per-revision transaction
    with op.get_context().autocommit_block():
        op.create_index("{name}", {py_table(table)}, [{cols}]{unique},
                        postgresql_concurrently=True, if_not_exists=True)
    # or, with umbau's helpers: ops.create_index("{name}", "{table}", [{cols}])


def downgrade():
    with op.get_context().autocommit_block():
        op.drop_index("{name}", table_name={py_table(table)},
                      postgresql_concurrently=True, if_exists=True)'''


RULE = Rule(
    id="require-concurrent-index-creation",
    title="index created without CONCURRENTLY",
    lock="SHARE on the table",
    blocks="writes (INSERT, UPDATE, DELETE) for the whole build; reads go on",
    effect="scans the whole table to build the index",
    problem="""A plain `CREATE INDEX` holds a SHARE lock on the table until the index is
built. Reads go on, but every INSERT, UPDATE and DELETE waits — on a big table for
minutes. `op.create_index()` emits exactly this statement. An index on a table
created in the same revision is fine: there are no rows and no traffic yet.""",
    safe="""def upgrade():
    # CONCURRENTLY cannot run in a transaction: leave umbau's per-revision transaction
    with op.get_context().autocommit_block():
        op.create_index("ix_documents_created_at", "documents", ["created_at"],
                        postgresql_concurrently=True, if_not_exists=True)


def downgrade():
    with op.get_context().autocommit_block():
        op.drop_index("ix_documents_created_at", table_name="documents",
                      postgresql_concurrently=True, if_exists=True)""",
    check=check,
    nodes=(ast.IndexStmt,),
)
