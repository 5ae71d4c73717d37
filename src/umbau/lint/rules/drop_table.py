"""DROP TABLE of a table that existed before the revision."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pglast import ast

from umbau.lint.context import OT, LintContext, object_name
from umbau.lint.model import Hit, Rule
from umbau.lint.rules._helpers import existing, py_table


def check(node: Any, ctx: LintContext) -> Iterator[Hit]:
    if isinstance(node, ast.DropStmt) and node.removeType == OT.OBJECT_TABLE:
        for obj in node.objects or ():
            table = object_name(obj)
            if existing(ctx, table):
                yield Hit(f"dropping {table} loses its rows and breaks running code that still "
                          "uses it: stop using it in a release first, back up, then drop", table,
                          safe=f'''# release N stops using {table}; release N+1, backup taken:
def upgrade():
    # umbau: ignore[drop-table] unused since release N, backup taken
    op.drop_table({py_table(table)})''')


RULE = Rule(
    id="drop-table",
    title="table dropped",
    lock="ACCESS EXCLUSIVE on the table",
    blocks="reads and writes; queued behind running queries, it blocks everything after it",
    effect="the table and its data are gone",
    problem="""Dropping a table deletes its data and breaks the application version that is
still running. Do it in the contract phase only, after a release that no longer uses
the table, with a verified backup (`umbau backup`).""",
    safe="""# release N+1, after the code stopped using the table:
def upgrade():
    op.drop_table("legacy_sessions")  # umbau: ignore[drop-table] unused since 1.4, backed up

def downgrade():
    op.create_table("legacy_sessions", sa.Column("id", sa.BigInteger(), primary_key=True))""",
    check=check,
    nodes=(ast.DropStmt,),
)
