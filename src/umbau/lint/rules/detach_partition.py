"""DETACH PARTITION without CONCURRENTLY (PostgreSQL 14+): ACCESS EXCLUSIVE on the parent."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from umbau.lint.context import AT, LintContext, relname
from umbau.lint.model import Hit, Rule
from umbau.lint.rules._helpers import ALTER_TABLE, commands, existing


def check(node: Any, ctx: LintContext) -> Iterator[Hit]:
    if ctx.target_version < 14:
        return
    for table, cmd in commands(node, AT.AT_DetachPartition):
        if existing(ctx, table) and not cmd.def_.concurrent:
            part = relname(cmd.def_.name)
            yield Hit(f"DETACH PARTITION {part} takes ACCESS EXCLUSIVE on {table}: detach it "
                      "CONCURRENTLY outside the transaction", table,
                      safe=f'''def upgrade():
    with op.get_context().autocommit_block():
        op.execute("ALTER TABLE {table} DETACH PARTITION {part} CONCURRENTLY")''')


RULE = Rule(
    id="detach-partition",
    title="partition detached without CONCURRENTLY",
    lock="ACCESS EXCLUSIVE on the partitioned table",
    blocks="reads and writes of every partition",
    effect="none on the data; the lock waits for and blocks every query on the parent",
    problem="""`ALTER TABLE … DETACH PARTITION` takes ACCESS EXCLUSIVE on the partitioned
table. Since PostgreSQL 14, `DETACH PARTITION … CONCURRENTLY` takes only SHARE UPDATE
EXCLUSIVE; it cannot run in a transaction block (PostgreSQL docs, "ALTER TABLE":
DETACH PARTITION).""",
    safe="""def upgrade():
    with op.get_context().autocommit_block():
        op.execute("ALTER TABLE events DETACH PARTITION events_2023 CONCURRENTLY")""",
    check=check,
    nodes=ALTER_TABLE,
)
