"""UPDATE/DELETE … WHERE in a transaction that already holds a DDL lock on a table."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pglast import ast

from umbau.lint.context import LintContext, relname
from umbau.lint.model import WARNING, Hit, Rule
from umbau.lint.rules._helpers import existing


def check(node: Any, ctx: LintContext) -> Iterator[Hit]:
    if isinstance(node, ast.UpdateStmt | ast.DeleteStmt) and node.whereClause is not None \
            and ctx.locked_in_transaction and ctx.in_transaction:
        table = relname(node.relation)
        if not existing(ctx, table):
            return
        locked = ", ".join(sorted(ctx.locked_in_transaction))
        verb = "UPDATE" if isinstance(node, ast.UpdateStmt) else "DELETE"
        yield Hit(f"{verb} of {table} runs after ALTER TABLE {locked} in the same transaction: "
                  f"the ALTER's lock (ACCESS EXCLUSIVE for most forms) is held for the whole "
                  f"{verb}; commit the DDL first, and change the rows in batches", table,
                  safe=f'''def upgrade():
    ...  # the ALTER TABLE {locked}
# the rows of {table}: a batched backfill after this revision (`umbau backfill run`),
# or at least after the DDL's commit:
#   with op.get_context().autocommit_block():
#       op.execute("{verb} ... {table} ... WHERE ...")''')


RULE = Rule(
    id="update-in-ddl-transaction",
    title="data change while a DDL lock is held",
    lock="the earlier ALTER TABLE's lock (mostly ACCESS EXCLUSIVE), held during the change",
    blocks="reads and writes of the altered table for as long as the UPDATE/DELETE runs",
    effect="as long as the data change takes, on a big table minutes",
    problem="""A revision runs in one transaction. When it first alters a table and then
updates or deletes rows, the ALTER's lock — ACCESS EXCLUSIVE for most forms — is
held until the revision commits, so the table is blocked for as long as the data
change runs. A warning; an error when the changed table is larger than
`lint.large_table` (read live). Commit the DDL first and change the rows in
batches.""",
    safe="""def upgrade():
    op.add_column("orders", sa.Column("currency", sa.Text(), nullable=True))
# then, in batches outside the revision: umbau backfill run backfills:orders_currency""",
    check=check,
    nodes=(ast.UpdateStmt, ast.DeleteStmt),
    severity=WARNING,
)
