"""CONCURRENTLY inside a transaction: PostgreSQL refuses it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pglast import ast

from umbau.lint.context import OT, LintContext, relname
from umbau.lint.model import Hit, Rule


def _concurrent(node: Any) -> str | None:
    if isinstance(node, ast.IndexStmt) and node.concurrent:
        return "CREATE INDEX CONCURRENTLY"
    if isinstance(node, ast.DropStmt) and node.concurrent and node.removeType == OT.OBJECT_INDEX:
        return "DROP INDEX CONCURRENTLY"
    if isinstance(node, ast.ReindexStmt) and any(
            getattr(p, "defname", None) == "concurrently" for p in node.params or ()):
        return "REINDEX CONCURRENTLY"
    return None


def check(node: Any, ctx: LintContext) -> Iterator[Hit]:
    what = _concurrent(node)
    if what and ctx.in_transaction:
        table = relname(node.relation) if getattr(node, "relation", None) else None
        yield Hit(f"{what} cannot run inside a transaction block and fails: wrap it in "
                  "`with op.get_context().autocommit_block():`", table,
                  safe=f'''def upgrade():
    with op.get_context().autocommit_block():
        ...  # the {what} statement, with IF NOT EXISTS / IF EXISTS so a rerun works''')


RULE = Rule(
    id="concurrently-in-transaction",
    title="CONCURRENTLY inside a transaction",
    lock="none: the statement fails",
    blocks="nothing, but the revision fails (25001 active_sql_transaction)",
    effect="the migration stops with an error",
    problem="""`CREATE INDEX CONCURRENTLY`, `DROP INDEX CONCURRENTLY` and
`REINDEX CONCURRENTLY` cannot run inside a transaction block. umbau (like Alembic
with `transaction_per_migration`) runs each revision in a transaction, so the
statement fails unless it leaves that transaction first.""",
    safe="""def upgrade():
    with op.get_context().autocommit_block():
        op.create_index("ix_orders_shop_id", "orders", ["shop_id"],
                        postgresql_concurrently=True, if_not_exists=True)""",
    check=check,
    nodes=(ast.IndexStmt, ast.DropStmt, ast.ReindexStmt),
)
