"""A CHECK constraint added without NOT VALID."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from umbau.lint.context import CT, LintContext
from umbau.lint.model import Hit, Rule
from umbau.lint.rules._helpers import ALTER_TABLE, added_constraints, existing


def check(node: Any, ctx: LintContext) -> Iterator[Hit]:
    for table, constraint in added_constraints(node):
        if constraint.contype == CT.CONSTR_CHECK and not constraint.skip_validation \
                and existing(ctx, table):
            yield Hit(f"the CHECK constraint {constraint.conname or ''} scans all of {table} "
                      "under an ACCESS EXCLUSIVE lock: add it NOT VALID, then VALIDATE in a "
                      "later revision", table, safe=_safe(table, constraint))


def _safe(table: str, constraint: Any) -> str:
    from umbau.sql import deparse

    name = constraint.conname or f"ck_{table.replace('.', '_')}"
    expr = deparse(constraint.raw_expr) if constraint.raw_expr is not None else "..."
    return f'''def upgrade():
    op.execute("ALTER TABLE {table} ADD CONSTRAINT {name} CHECK ({expr}) NOT VALID")
    # or, with umbau's helpers: ops.add_check("{name}", "{table}", "{expr}")

# a later revision (SHARE UPDATE EXCLUSIVE: reads and writes go on):
def upgrade():
    op.execute("ALTER TABLE {table} VALIDATE CONSTRAINT {name}")'''


RULE = Rule(
    id="check-not-valid",
    title="CHECK constraint validated while it is added",
    lock="ACCESS EXCLUSIVE on the table",
    blocks="reads and writes until every row is checked",
    effect="scans the whole table",
    problem="""`ADD CONSTRAINT … CHECK (…)` checks every row while holding an ACCESS
EXCLUSIVE lock: nothing can read or write the table until the scan ends. Add it
`NOT VALID` (instant, enforced for new rows) and `VALIDATE CONSTRAINT` in a later
revision, which takes only a SHARE UPDATE EXCLUSIVE lock.""",
    safe="""# revision 1
def upgrade():
    op.create_check_constraint("ck_invoices_total_positive", "invoices", "total >= 0",
                               postgresql_not_valid=True)

# revision 2 (its own transaction)
def upgrade():
    op.execute("ALTER TABLE invoices VALIDATE CONSTRAINT ck_invoices_total_positive")""",
    check=check,
    nodes=ALTER_TABLE,
)
