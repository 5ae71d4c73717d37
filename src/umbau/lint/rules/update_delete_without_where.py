"""UPDATE or DELETE of every row of an existing table, in any revision."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pglast import ast

from umbau.lint.context import LintContext, relname
from umbau.lint.model import WARNING, Hit, Rule
from umbau.lint.rules._helpers import existing


def check(node: Any, ctx: LintContext) -> Iterator[Hit]:
    if isinstance(node, ast.UpdateStmt | ast.DeleteStmt) and node.whereClause is None:
        table = relname(node.relation)
        if existing(ctx, table):
            verb = "UPDATE" if isinstance(node, ast.UpdateStmt) else "DELETE"
            yield Hit(f"{verb} without WHERE changes every row of {table} in one transaction "
                      f"(row locks on all of them until it commits): run it as a batched "
                      f"backfill (`umbau backfill run`), or add the WHERE you meant", table,
                      safe=_safe(table, node))


def _safe(table: str, node: Any) -> str:
    if isinstance(node, ast.DeleteStmt):
        return f'''# delete in keyset-paged batches, each its own short transaction:
#   DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE <condition> LIMIT 5000)
# or, to empty the table on purpose, say so in a reviewed revision:
#   op.execute("TRUNCATE {table}")'''
    targets = [t for t in node.targetList or () if isinstance(t, ast.ResTarget)]
    column = targets[0].name if targets else "<column>"
    name = f"{table.replace('.', '_')}_{column}"
    return f'''# backfills.py: batched, resumable, outside the schema revision
from umbau.backfill import Backfill

{name} = Backfill(name="{name}", table="{table}",
    set={{"{column}": "<the new value>"}}, where="{column} IS DISTINCT FROM <the new value>")
# run it with: umbau backfill run backfills:{name}'''


RULE = Rule(
    id="update-delete-without-where",
    title="UPDATE or DELETE of every row of an existing table",
    lock="ROW EXCLUSIVE on the table, and a row lock on every row",
    blocks="writes to every row until the revision's transaction ends",
    effect="touches every row in one transaction (dead tuples, WAL, replication lag)",
    problem="""An `UPDATE` or `DELETE` without `WHERE` changes every row of the table in one
transaction: every row stays locked until the revision commits, the whole table's
worth of dead tuples and WAL is written at once, and replicas fall behind. In a
revision that also changes the schema, the DDL's strong lock is held just as long.
A warning on a small table; an error on a table larger than `lint.large_table`
(read live). Change data in keyset-paged batches (`umbau backfill`).""",
    safe="""# backfills.py: batched, resumable, outside the schema revision
from umbau.backfill import Backfill

orders_shop_id = Backfill(name="orders_shop_id", table="orders",
                          set={"shop_id": "1"}, where="shop_id IS NULL")
# run it with: umbau backfill run backfills:orders_shop_id""",
    check=check,
    nodes=(ast.UpdateStmt, ast.DeleteStmt),
    severity=WARNING,
)
