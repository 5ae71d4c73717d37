"""ALTER TABLE … SET TABLESPACE on an existing table: a full copy under ACCESS EXCLUSIVE."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from umbau.lint.context import AT, LintContext
from umbau.lint.model import Hit, Rule
from umbau.lint.rules._helpers import ALTER_TABLE, commands, existing


def check(node: Any, ctx: LintContext) -> Iterator[Hit]:
    for table, cmd in commands(node, AT.AT_SetTableSpace):
        if existing(ctx, table):
            yield Hit(f"SET TABLESPACE {cmd.name} copies all of {table} to the new tablespace "
                      f"under an ACCESS EXCLUSIVE lock: move it outside a deploy (pg_repack "
                      "--tablespace), or create new tables there", table,
                      safe=f"""# keep the move out of the revision; during a quiet hour:
#   pg_repack --table={table} --tablespace={cmd.name} --moveidx
# new tables can be created there directly:
#   op.create_table(..., postgresql_tablespace="{cmd.name}")""")


RULE = Rule(
    id="set-tablespace",
    title="table moved to another tablespace",
    lock="ACCESS EXCLUSIVE on the table",
    blocks="reads and writes for the whole copy",
    effect="copies the table and its data files to the new tablespace",
    problem="""`ALTER TABLE … SET TABLESPACE` copies every data file of the table to the new
tablespace while holding an ACCESS EXCLUSIVE lock: no reads, no writes, for as long as
the copy of the whole table takes (PostgreSQL docs, "ALTER TABLE": SET TABLESPACE).""",
    safe="""# outside the revision, online:
#   pg_repack --table=documents --tablespace=fast_ssd --moveidx""",
    check=check,
    nodes=ALTER_TABLE,
)
