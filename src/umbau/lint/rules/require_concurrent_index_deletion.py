"""DROP INDEX without CONCURRENTLY."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pglast import ast

from umbau.lint.context import OT, LintContext, object_name
from umbau.lint.model import Hit, Rule
from umbau.lint.rules._helpers import existing


def check(node: Any, ctx: LintContext) -> Iterator[Hit]:
    if isinstance(node, ast.DropStmt) and node.removeType == OT.OBJECT_INDEX \
            and not node.concurrent:
        for obj in node.objects or ():
            index = object_name(obj)
            table = ctx.indexes.get(index)
            if table is None or existing(ctx, table):
                yield Hit(f"DROP INDEX {index} takes an ACCESS EXCLUSIVE lock on its table and "
                          "waits behind every running query: drop it CONCURRENTLY", table,
                          safe=f'''def upgrade():
    with op.get_context().autocommit_block():
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS {index}")''')


RULE = Rule(
    id="require-concurrent-index-deletion",
    title="index dropped without CONCURRENTLY",
    lock="ACCESS EXCLUSIVE on the table",
    blocks="reads and writes; queued behind running queries, it blocks everything after it",
    effect="none (quick once the lock is granted)",
    problem="""`DROP INDEX` needs an ACCESS EXCLUSIVE lock on the index's table. The drop
itself is quick, but while it waits for a long-running query to finish every other
query on the table queues up behind it.""",
    safe="""def upgrade():
    with op.get_context().autocommit_block():
        op.drop_index("ix_documents_created_at", table_name="documents",
                      postgresql_concurrently=True, if_exists=True)""",
    check=check,
    nodes=(ast.DropStmt,),
)
