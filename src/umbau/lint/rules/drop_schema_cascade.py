"""DROP SCHEMA … CASCADE: drops every object in the schema, whatever depends on it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pglast import ast, enums

from umbau.lint.context import OT, LintContext, object_name
from umbau.lint.model import Hit, Rule


def check(node: Any, ctx: LintContext) -> Iterator[Hit]:
    if isinstance(node, ast.DropStmt) and node.removeType == OT.OBJECT_SCHEMA \
            and node.behavior == enums.DropBehavior.DROP_CASCADE:
        for obj in node.objects or ():
            schema = object_name(obj)
            yield Hit(f"DROP SCHEMA {schema} CASCADE drops every table, view and function in "
                      f"{schema} and everything that depends on them: drop the objects one by "
                      "one in earlier revisions, then the empty schema without CASCADE",
                      safe=f'''# earlier revisions drop {schema}'s tables one by one,
# then this one drops the schema, empty by now:
def upgrade():
    op.execute("DROP SCHEMA {schema}")  # RESTRICT: fails if anything is left''')


RULE = Rule(
    id="drop-schema-cascade",
    title="schema dropped with CASCADE",
    lock="ACCESS EXCLUSIVE on every object in the schema",
    blocks="everything that reads or writes the schema's tables",
    effect="deletes every object of the schema and whatever depends on them, with their data",
    problem="""`DROP SCHEMA … CASCADE` removes every table, view, sequence and function of the
schema and — through CASCADE — every object elsewhere that depends on them (views,
foreign keys). Nothing lists what went. Drop the objects one by one, in reviewed
revisions, and the empty schema last without CASCADE (PostgreSQL docs, "DROP SCHEMA").""",
    safe="""def upgrade():
    op.drop_table("events", schema="legacy")
    op.execute("DROP SCHEMA legacy")  # RESTRICT: fails while anything is left""",
    check=check,
    nodes=(ast.DropStmt,),
)
