"""UPDATE or DELETE of every row of an existing table, in a revision that changes the schema."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pglast import ast

from umbau.lint.context import LintContext, relname
from umbau.lint.model import Hit, Rule
from umbau.lint.rules._helpers import existing


def check(node: Any, ctx: LintContext) -> Iterator[Hit]:
    # Only next to DDL: a revision that only changes data is a deliberate data migration;
    # in a schema revision the row locks and the DDL's strong lock last as long as both.
    if isinstance(node, ast.UpdateStmt | ast.DeleteStmt) and node.whereClause is None \
            and ctx.unit_changes_schema:
        table = relname(node.relation)
        if existing(ctx, table):
            verb = "UPDATE" if isinstance(node, ast.UpdateStmt) else "DELETE"
            yield Hit(f"{verb} without WHERE in a schema revision locks every row of {table}, "
                      "and holds the DDL's lock, until the revision commits: move it to a "
                      "batched backfill (`umbau backfill run`), or add the WHERE you meant", table)


RULE = Rule(
    id="update-delete-without-where",
    title="UPDATE or DELETE of every row in a schema revision",
    lock="ROW EXCLUSIVE on the table, and a row lock on every row",
    blocks="writes to every row until the revision's transaction ends",
    effect="touches every row in one transaction (dead tuples, WAL, replication lag)",
    problem="""An `UPDATE` or `DELETE` without `WHERE` in a revision that also changes the
schema holds a lock on every row of the table until the revision's transaction
commits, and keeps the DDL's strong lock (often ACCESS EXCLUSIVE) just as long, so
the table is blocked for as long as the whole data change takes. A `DELETE` without
`WHERE` is also an easy way to lose data. Keep schema changes and data changes apart:
change data in keyset-paged batches with their own short transactions. A revision
that only changes data is not flagged.""",
    safe="""# schema revision: only the schema change
def upgrade():
    op.add_column("orders", sa.Column("shop_id", sa.BigInteger(), nullable=True))

# data: batched, resumable, outside the schema revision, e.g. in backfills.py
from umbau.backfill import Backfill

orders_shop_id = Backfill(name="orders_shop_id", table="orders",
                          set={"shop_id": "1"}, where="shop_id IS NULL")
# run it with: umbau backfill run backfills:orders_shop_id""",
    check=check,
)
