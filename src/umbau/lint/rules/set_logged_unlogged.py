"""SET LOGGED / SET UNLOGGED rewrite the table."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from umbau.lint.context import AT, LintContext
from umbau.lint.model import Hit, Rule
from umbau.lint.rules._helpers import ALTER_TABLE, commands, existing


def check(node: Any, ctx: LintContext) -> Iterator[Hit]:
    for table, cmd in commands(node, AT.AT_SetLogged, AT.AT_SetUnLogged):
        if existing(ctx, table):
            mode = "LOGGED" if cmd.subtype == AT.AT_SetLogged else "UNLOGGED"
            yield Hit(f"SET {mode} rewrites all of {table} under an ACCESS EXCLUSIVE lock", table,
                      safe=f'''# no online form: create {table}_new as {mode} (CREATE {mode} TABLE
# {table}_new (LIKE {table} INCLUDING ALL)), copy the rows in batches (`umbau backfill`),
# then swap the names in a short revision''')


RULE = Rule(
    id="set-logged-unlogged",
    title="SET LOGGED or SET UNLOGGED",
    lock="ACCESS EXCLUSIVE on the table",
    blocks="reads and writes for the whole rewrite",
    effect="rewrites the table (SET LOGGED also writes all of it to the WAL)",
    problem="""Switching a table between logged and unlogged copies it completely while an
ACCESS EXCLUSIVE lock blocks all access; `SET LOGGED` also pushes the whole table
through the WAL and to the replicas. An unlogged table is also emptied after a crash
and is not replicated.""",
    safe="""# Create the new table with the persistence you want and move the rows in batches:
def upgrade():
    op.execute("CREATE TABLE events_logged (LIKE events INCLUDING ALL)")
# copy the rows in keyset-paged batches, each its own transaction:
#   INSERT INTO events_logged SELECT * FROM events WHERE id > :last ORDER BY id LIMIT 5000
# (plus a trigger for rows written meanwhile), then swap names in one short revision""",
    check=check,
    nodes=ALTER_TABLE,
)
