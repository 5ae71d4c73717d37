"""RENAME COLUMN breaks the code that is still running."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pglast import ast

from umbau.lint.context import OT, LintContext, relname
from umbau.lint.model import Hit, Rule
from umbau.lint.rules._helpers import existing
from umbau.lint.rules._ops_calls import ops_calls


def check(node: Any, ctx: LintContext) -> Iterator[Hit]:
    if isinstance(node, ast.RenameStmt) and node.renameType == OT.OBJECT_COLUMN \
            and node.relationType == OT.OBJECT_TABLE:
        table = relname(node.relation)
        if (table, node.subname, node.newname) in ops_calls(ctx).renamed_columns:
            return  # ops.contract_change_type swaps its shadow column in
        if existing(ctx, table):
            yield Hit(f"renaming {table}.{node.subname} to {node.newname} breaks every running "
                      "instance that still uses the old name: add the new column, dual-write, "
                      "backfill, switch, then drop the old one", table,
                      safe=_safe(table, str(node.subname), str(node.newname)))


def _safe(table: str, old: str, new: str) -> str:
    return f'''# expand: add {new} beside {old}, keep both in step, backfill
def upgrade():
    ops.rename_column("{table}", "{old}", "{new}")  # umbau's expand/contract helper
# plain SQL: ALTER TABLE {table} ADD COLUMN {new} <type>; a trigger copying {old} -> {new};
# backfill {new}; deploy code that reads {new}; contract: DROP COLUMN {old} in a later release'''


RULE = Rule(
    id="rename-column",
    title="column renamed under running code",
    lock="ACCESS EXCLUSIVE on the table (briefly)",
    blocks="reads and writes for a moment; old application code fails afterwards",
    effect="breaks queries of the deployed application version",
    problem="""During a rolling deploy the old version of the application keeps running
against the new schema. After a rename, every query of the old code that names the
column fails. Renames need expand/contract: add, dual-write, backfill, switch,
drop.""",
    safe="""# expand (release N): a new column, written by both versions
def upgrade():
    op.add_column("customers", sa.Column("email_address", sa.Text(), nullable=True))
    op.execute("UPDATE customers SET email_address = email WHERE email_address IS NULL")
    # (batch the backfill on big tables: `umbau backfill`)

# contract (release N+1, once no running code reads `email`)
def upgrade():
    op.drop_column("customers", "email")""",
    check=check,
    nodes=(ast.RenameStmt,),
)
