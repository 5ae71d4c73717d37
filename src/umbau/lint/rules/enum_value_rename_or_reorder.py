"""Renaming or reordering an enum's values: the application's code still uses the old ones."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pglast import ast

from umbau.lint.context import LintContext, object_name
from umbau.lint.model import Hit, Rule


def check(node: Any, ctx: LintContext) -> Iterator[Hit]:
    if isinstance(node, ast.AlterEnumStmt) and node.oldVal is not None:
        enum = object_name(node.typeName)
        yield Hit(f"renaming {enum} value '{node.oldVal}' to '{node.newVal}' breaks the running "
                  f"application, which still writes '{node.oldVal}': add '{node.newVal}', move "
                  "the rows, deploy, and drop the old value only when no code writes it",
                  safe=_rename_safe(enum, str(node.oldVal), str(node.newVal)))
    elif isinstance(node, ast.CreateEnumStmt):
        enum = object_name(node.typeName)
        before = ctx.replaced_enums.get(enum)
        after = [str(v.sval) for v in node.vals or ()]
        if before is not None and [v for v in after if v in before] != \
                [v for v in before if v in after]:
            yield Hit(f"{enum} is recreated with its values in another order ({', '.join(before)}"
                      f" -> {', '.join(after)}): ORDER BY and < > comparisons on it change "
                      "meaning; add new values with ADD VALUE … BEFORE/AFTER instead",
                      safe=f'''def upgrade():
    with op.get_context().autocommit_block():
        op.execute("ALTER TYPE {enum} ADD VALUE IF NOT EXISTS '<new>' BEFORE '<existing>'")''')


def _rename_safe(enum: str, old: str, new: str) -> str:
    return f'''# expand: add the new value (autocommit: it must commit before use)
def upgrade():
    with op.get_context().autocommit_block():
        op.execute("ALTER TYPE {enum} ADD VALUE IF NOT EXISTS '{new}'")
# deploy code that reads both and writes '{new}'; move the rows in batches:
#   UPDATE <table> SET <column> = '{new}' WHERE <column> = '{old}'
# contract, once nothing writes '{old}': recreate {enum} without it'''


RULE = Rule(
    id="enum-value-rename-or-reorder",
    title="enum value renamed or values reordered",
    lock="ACCESS EXCLUSIVE on the enum type (short)",
    blocks="nothing for long; the running application breaks",
    effect="old application code writes or compares values that changed",
    problem="""`ALTER TYPE … RENAME VALUE` takes effect at once: the application version still
running writes the old label and fails ("invalid input value for enum"). Recreating
an enum with its values in another order changes what `ORDER BY` and comparisons on
the column return. Expand and contract: add the new value, move the rows, deploy,
remove the old value last (PostgreSQL docs, "ALTER TYPE", "8.7. Enumerated Types").""",
    safe="""def upgrade():
    with op.get_context().autocommit_block():
        op.execute("ALTER TYPE order_status ADD VALUE IF NOT EXISTS 'cancelled'")
# move the rows from 'canceled' in batches; drop 'canceled' after the deploy""",
    check=check,
    nodes=(ast.AlterEnumStmt, ast.CreateEnumStmt),
)
