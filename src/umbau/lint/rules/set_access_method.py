"""ALTER TABLE … SET ACCESS METHOD: rewrites the table under ACCESS EXCLUSIVE."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from umbau.lint.context import AT, LintContext
from umbau.lint.model import Hit, Rule
from umbau.lint.rules._helpers import ALTER_TABLE, commands, existing


def check(node: Any, ctx: LintContext) -> Iterator[Hit]:
    for table, cmd in commands(node, AT.AT_SetAccessMethod):
        if existing(ctx, table):
            yield Hit(f"SET ACCESS METHOD {cmd.name} rewrites all of {table} under an ACCESS "
                      "EXCLUSIVE lock: build a new table with the access method and move the "
                      "rows in batches", table,
                      safe=f"""def upgrade():
    op.execute("CREATE TABLE {table}_new (LIKE {table} INCLUDING ALL) USING {cmd.name}")
# then copy the rows in batches (`umbau backfill`) and swap the names in a short revision""")


RULE = Rule(
    id="set-access-method",
    title="table access method changed",
    lock="ACCESS EXCLUSIVE on the table",
    blocks="reads and writes for the whole rewrite",
    effect="rewrites the table and all its indexes",
    problem="""`ALTER TABLE … SET ACCESS METHOD` (PostgreSQL 15+) rewrites every row of the
table into the new access method while holding ACCESS EXCLUSIVE (PostgreSQL docs,
"ALTER TABLE": SET ACCESS METHOD).""",
    safe="""def upgrade():
    op.execute("CREATE TABLE events_new (LIKE events INCLUDING ALL) USING columnar")
# copy in batches, then swap names in a short revision""",
    check=check,
    nodes=ALTER_TABLE,
)
