"""ADD COLUMN with a default that rewrites the table."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from umbau.lint.context import LintContext
from umbau.lint.model import Hit, Rule
from umbau.lint.rules._helpers import (
    ALTER_TABLE,
    added_columns,
    default_of,
    existing,
    function_names,
    py_table,
)


def check(node: Any, ctx: LintContext) -> Iterator[Hit]:
    for table, column in added_columns(node):
        default = default_of(column)
        if default is None or not existing(ctx, table):
            continue
        kinds = {name: ctx.function_kind(name) for name in function_names(default)}
        volatile = sorted(n for n, k in kinds.items() if k == "v")
        unknown = sorted(n for n, k in kinds.items() if k is None)
        if volatile or unknown:
            why = (f"calls {', '.join(volatile)}(), which is volatile" if volatile else
                   f"calls {', '.join(unknown)}(), which is not built in and whose volatility "
                   "umbau cannot see without the server (lint with a database_url)")
            yield Hit(f"the default of {column.colname} {why}: PostgreSQL rewrites all of "
                      f"{table} under an ACCESS EXCLUSIVE lock; add the column without a "
                      "default, set the default, backfill", table,
                      safe=_safe(table, column.colname, default))
        elif ctx.target_version < 11:
            yield Hit(f"before PostgreSQL 11 any default on ADD COLUMN rewrites {table} "
                      f"(target is {ctx.target_version}): add the column, then set the default",
                      table, safe=_safe(table, column.colname, default))


def _safe(table: str, column: str, default: Any) -> str:
    from umbau.sql import deparse

    expr = deparse(default)
    return f'''# revision 1: no rewrite; new rows get the default from now on
def upgrade():
    op.add_column({py_table(table)}, sa.Column("{column}", ..., nullable=True))
    op.alter_column({py_table(table)}, "{column}", server_default=sa.text("{expr}"))

# then fill the old rows in batches (`umbau backfill`):
#   UPDATE {table} SET {column} = {expr} WHERE {column} IS NULL AND <key range>'''


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
lock. Before 11, every default rewrites. Volatility is read from the server's
`pg_proc.provolatile` when lint is connected, from the history's own CREATE FUNCTION,
and offline from a list of the built-in functions generated from a real server
(`python -m umbau.lint.builtins URL`); a function in none of them is taken as
volatile (PostgreSQL docs, "ALTER TABLE", Notes; "38.7. Function Volatility
Categories").""",
    safe="""# revision 1: no rewrite; new rows get the default from now on
def upgrade():
    op.add_column("documents", sa.Column("public_id", sa.Uuid(), nullable=True))
    op.alter_column("documents", "public_id", server_default=sa.text("gen_random_uuid()"))

# then fill the old rows in batches (`umbau backfill`):
#   UPDATE documents SET public_id = gen_random_uuid() WHERE id BETWEEN … AND …""",
    check=check,
    nodes=ALTER_TABLE,
)
