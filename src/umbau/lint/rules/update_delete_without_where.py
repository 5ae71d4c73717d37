"""UPDATE or DELETE of every row of an existing table."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pglast import ast

from umbau.lint.context import LintContext, relname
from umbau.lint.model import Hit, Rule
from umbau.lint.rules._helpers import existing


def check(node: Any, ctx: LintContext) -> Iterator[Hit]:
    if isinstance(node, ast.UpdateStmt | ast.DeleteStmt) and node.whereClause is None:
        table = relname(node.relation)
        if existing(ctx, table):
            verb = "UPDATE" if isinstance(node, ast.UpdateStmt) else "DELETE"
            yield Hit(f"{verb} without WHERE locks every row of {table} until the revision "
                      "commits: batch it with `umbau backfill`, or add the WHERE you meant",
                      table)


RULE = Rule(
    id="update-delete-without-where",
    title="UPDATE or DELETE of every row",
    lock="ROW EXCLUSIVE on the table, and a row lock on every row",
    blocks="writes to every row until the revision's transaction ends",
    effect="touches every row in one transaction (dead tuples, WAL, replication lag)",
    problem="""An `UPDATE` or `DELETE` without `WHERE` in a revision holds a lock on every
row of the table until the revision's transaction commits, and — next to DDL in the
same transaction — keeps the DDL's strong lock just as long. A `DELETE` without
`WHERE` is also an easy way to lose data. Change data in keyset-paged batches with
their own short transactions.""",
    safe="""# schema revision: only the schema change
def upgrade():
    op.add_column("orders", sa.Column("shop_id", sa.BigInteger(), nullable=True))

# data: batched, resumable, outside the schema revision
#   umbau backfill orders --set "shop_id = 1" --where "shop_id IS NULL" --batch 5000""",
    check=check,
)
