"""DROP NOT NULL (opt-in): old code may not expect NULLs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from umbau.lint.context import AT, LintContext
from umbau.lint.model import WARNING, Hit, Rule
from umbau.lint.rules._helpers import ALTER_TABLE, commands, existing, py_table


def check(node: Any, ctx: LintContext) -> Iterator[Hit]:
    for table, cmd in commands(node, AT.AT_DropNotNull):
        if existing(ctx, table):
            yield Hit(f"{table}.{cmd.name} may be NULL from now on: make sure the running code "
                      "(and its readers, reports, exports) copes with NULL", table,
                      safe=f'''# release N: code that copes with NULL in {table}.{cmd.name}; then:
def upgrade():
    op.alter_column({py_table(table)}, "{cmd.name}", nullable=True)''')


RULE = Rule(
    id="drop-not-null",
    title="NOT NULL dropped",
    lock="ACCESS EXCLUSIVE on the table (briefly)",
    blocks="reads and writes for a moment",
    effect="none on the table; readers may now see NULL",
    problem="""Dropping NOT NULL is quick, but code that assumes a value — including the
application version still running — can now read NULLs. Opt in with
`enable = ["drop-not-null"]` when your readers are strict.""",
    safe="""def upgrade():
    # first release code that handles NULL in documents.title, then:
    op.alter_column("documents", "title", nullable=True)""",
    check=check,
    nodes=ALTER_TABLE,
    severity=WARNING,
    opt_in=True,
)
