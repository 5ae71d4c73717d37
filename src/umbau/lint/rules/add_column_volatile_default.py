"""ADD COLUMN with a default that rewrites the table."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from umbau.lint.context import LintContext
from umbau.lint.model import Hit, Rule
from umbau.lint.rules._helpers import VOLATILE, added_columns, default_of, existing, function_names


def check(node: Any, ctx: LintContext) -> Iterator[Hit]:
    for table, column in added_columns(node):
        default = default_of(column)
        if default is None or not existing(ctx, table):
            continue
        volatile = sorted(function_names(default) & VOLATILE)
        if volatile:
            yield Hit(f"the default of {column.colname} calls {', '.join(volatile)}(), which is "
                      f"volatile: PostgreSQL rewrites all of {table} under an ACCESS EXCLUSIVE "
                      "lock; add the column without a default, set the default, backfill", table)
        elif ctx.target_version < 11:
            yield Hit(f"before PostgreSQL 11 any default on ADD COLUMN rewrites {table} "
                      f"(target is {ctx.target_version}): add the column, then set the default",
                      table)


RULE = Rule(
    id="add-column-volatile-default",
    title="column added with a default that rewrites the table",
    lock="ACCESS EXCLUSIVE on the table",
    blocks="reads and writes for the whole rewrite",
    effect="rewrites the table and all its indexes",
    problem="""Since PostgreSQL 11 a column with a *constant* default (or a stable
expression such as `now()`) is added instantly. A *volatile* default —
`gen_random_uuid()`, `random()`, `clock_timestamp()`, `nextval()` — has to be
computed per row, so PostgreSQL rewrites the whole table under an ACCESS EXCLUSIVE
lock. Before 11, every default rewrites.""",
    safe="""# revision 1: no rewrite; new rows get the default from now on
def upgrade():
    op.add_column("documents", sa.Column("public_id", sa.Uuid(), nullable=True))
    op.alter_column("documents", "public_id", server_default=sa.text("gen_random_uuid()"))

# then fill the old rows in batches (`umbau backfill`):
#   UPDATE documents SET public_id = gen_random_uuid() WHERE id BETWEEN … AND …""",
    check=check,
)
