"""TRUNCATE in a revision."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pglast import ast

from umbau.lint.context import LintContext, relname
from umbau.lint.model import Hit, Rule
from umbau.lint.rules._helpers import existing


def check(node: Any, ctx: LintContext) -> Iterator[Hit]:
    if isinstance(node, ast.TruncateStmt):
        for rel in node.relations or ():
            table = relname(rel)
            if existing(ctx, table):
                yield Hit(f"TRUNCATE {table} deletes every row under an ACCESS EXCLUSIVE lock: "
                          "if the data is really not needed, back it up first and say why in an "
                          "ignore", table, safe=f'''# back up {table} first; then, deliberately:
def upgrade():
    # umbau: ignore[truncate-table] <why the rows are not needed>
    op.execute("TRUNCATE {table}")
# or delete in batches to keep it online: umbau backfill with a DELETE''')


RULE = Rule(
    id="truncate-table",
    title="table truncated",
    lock="ACCESS EXCLUSIVE on the table",
    blocks="reads and writes",
    effect="every row is gone (and cannot be rolled back once committed)",
    problem="""`TRUNCATE` empties the table at once under an ACCESS EXCLUSIVE lock. In a
schema revision it is almost always a mistake or a shortcut that loses production
data.""",
    safe="""# keep the data, or delete only what you mean, in short batches outside the
# revision (each its own transaction, repeated until it deletes nothing):
#   DELETE FROM sessions WHERE id IN (SELECT id FROM sessions
#       WHERE expires_at < now() - interval '30 days' LIMIT 5000)
# if the table really is disposable:
def upgrade():
    # umbau: ignore[truncate-table] derived cache, rebuilt on start
    op.execute("TRUNCATE cache_entries")""",
    check=check,
    nodes=(ast.TruncateStmt,),
)
