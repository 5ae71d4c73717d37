"""DROP COLUMN breaks the code that is still running, and loses data."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from umbau.lint.context import AT, LintContext
from umbau.lint.model import Hit, Rule
from umbau.lint.rules._helpers import ALTER_TABLE, commands, existing, py_table
from umbau.lint.rules._ops_calls import ops_calls


def check(node: Any, ctx: LintContext) -> Iterator[Hit]:
    for table, cmd in commands(node, AT.AT_DropColumn):
        if (table, cmd.name) in ops_calls(ctx).dropped:
            continue  # an ops contract step: it refuses until the column is unused
        if existing(ctx, table):
            yield Hit(f"dropping {table}.{cmd.name} loses its data and breaks running code that "
                      "still selects it (ORMs list every column): stop using it in a release "
                      "first, back up, then drop", table, safe=_safe(table, cmd.name))


def _safe(table: str, column: str) -> str:
    return f'''# release N: the code stops reading and writing {table}.{column}
# (SQLAlchemy: remove it from the model, or mark it deferred); release N+1, after a backup:
def upgrade():
    # umbau: ignore[drop-column] unused since release N, backup taken
    op.drop_column({py_table(table)}, "{column}")'''


RULE = Rule(
    id="drop-column",
    title="column dropped",
    lock="ACCESS EXCLUSIVE on the table (briefly)",
    blocks="reads and writes for a moment; old application code fails afterwards",
    effect="the column's data is gone; queries naming it fail",
    problem="""The running application version (an ORM model lists every column) still
selects the column, and fails once it is gone; the data is gone too. Drop a column
only in the contract phase: after a release that no longer reads or writes it, and
with a backup behind it.""",
    safe="""# release N: remove the column from the model (SQLAlchemy: deferred / not mapped),
# release N+1:
def upgrade():
    op.drop_column("documents", "legacy_ocr_text")  # umbau: ignore[drop-column] unused since 2.0

def downgrade():
    op.add_column("documents", sa.Column("legacy_ocr_text", sa.Text(), nullable=True))""",
    check=check,
    nodes=ALTER_TABLE,
)
