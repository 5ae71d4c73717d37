"""RENAME TABLE breaks the code that is still running."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pglast import ast

from umbau.lint.context import OT, LintContext, relname
from umbau.lint.model import Hit, Rule
from umbau.lint.rules._helpers import existing
from umbau.lint.rules._ops_calls import ops_calls


def check(node: Any, ctx: LintContext) -> Iterator[Hit]:
    if isinstance(node, ast.RenameStmt) and node.renameType == OT.OBJECT_TABLE:
        table = relname(node.relation)
        if (table, node.newname) in ops_calls(ctx).renamed_tables:
            return  # ops.rename_table leaves an updatable view under the old name
        if existing(ctx, table):
            yield Hit(f"renaming {table} to {node.newname} breaks every running instance that "
                      "still uses the old name: rename, then keep a view with the old name until "
                      "the old code is gone", table, safe=_safe(table, str(node.newname)))


def _safe(table: str, new: str) -> str:
    return f'''def upgrade():
    op.rename_table("{table.split('.')[-1]}", "{new}")
    # the old name keeps working for the running release (simple views are updatable)
    op.execute("CREATE VIEW {table} AS SELECT * FROM {new}")

# a later release, once no code uses {table}:
def upgrade():
    op.execute("DROP VIEW {table}")'''


RULE = Rule(
    id="rename-table",
    title="table renamed under running code",
    lock="ACCESS EXCLUSIVE on the table (briefly)",
    blocks="reads and writes for a moment; old application code fails afterwards",
    effect="breaks queries of the deployed application version",
    problem="""The application version that is still running names the old table; after
the rename each of its queries fails with `relation does not exist`. Keep the old
name working (an updatable view) until every instance runs the new code.""",
    safe="""# release N
def upgrade():
    op.rename_table("orders", "shop_orders")
    op.execute("CREATE VIEW orders AS SELECT * FROM shop_orders")  # simple views are updatable

# release N+1, when no running code uses `orders`
def upgrade():
    op.execute("DROP VIEW orders")""",
    check=check,
    nodes=(ast.RenameStmt,),
)
