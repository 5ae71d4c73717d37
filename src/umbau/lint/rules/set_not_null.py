"""SET NOT NULL without a validated CHECK (col IS NOT NULL) to prove it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from umbau.lint.context import AT, LintContext
from umbau.lint.model import Hit, Rule
from umbau.lint.rules._helpers import ALTER_TABLE, commands, existing, py_table


def check(node: Any, ctx: LintContext) -> Iterator[Hit]:
    for table, cmd in commands(node, AT.AT_SetNotNull):
        if not existing(ctx, table):
            continue
        if ctx.has_validated_not_null_check(table, cmd.name):
            if ctx.target_version >= 12:
                continue
            yield Hit(f"PostgreSQL {ctx.target_version} ignores the CHECK ({cmd.name} IS NOT "
                      f"NULL) and scans {table} under an ACCESS EXCLUSIVE lock: upgrade to 12+, "
                      "or keep the CHECK constraint instead of NOT NULL", table,
                      safe=f"# before PostgreSQL 12 keep the validated CHECK ({cmd.name} IS NOT "
                           f"NULL) on {table} instead of SET NOT NULL, or upgrade the server")
            continue
        yield Hit(f"SET NOT NULL on {table}.{cmd.name} scans the whole table under an ACCESS "
                  f"EXCLUSIVE lock: first add CHECK ({cmd.name} IS NOT NULL) NOT VALID and "
                  "VALIDATE it in another revision", table, safe=_safe(table, cmd.name))


def _safe(table: str, column: str) -> str:
    check = f"{table.split('.')[-1]}_{column}_not_null"
    return f'''def upgrade():
    op.execute("ALTER TABLE {table} ADD CONSTRAINT {check} CHECK ({column} IS NOT NULL) NOT VALID")

# a later revision: VALIDATE takes SHARE UPDATE EXCLUSIVE, then SET NOT NULL uses the check
def upgrade():
    op.execute("ALTER TABLE {table} VALIDATE CONSTRAINT {check}")
    op.alter_column({py_table(table)}, "{column}", nullable=False)
    op.execute("ALTER TABLE {table} DROP CONSTRAINT {check}")
# or, with umbau's helpers: ops.set_not_null("{table}", "{column}")'''


RULE = Rule(
    id="set-not-null",
    title="SET NOT NULL without a validated CHECK",
    lock="ACCESS EXCLUSIVE on the table",
    blocks="reads and writes until the scan ends",
    effect="scans the whole table to prove there are no NULLs",
    problem="""`ALTER COLUMN … SET NOT NULL` scans every row under an ACCESS EXCLUSIVE lock.
From PostgreSQL 12 on, the scan is skipped when a *validated* `CHECK (col IS NOT
NULL)` constraint already proves it — and that constraint can be added NOT VALID and
validated without blocking.""",
    safe="""# revision 1
def upgrade():
    op.create_check_constraint("ck_orders_shop_id_not_null", "orders",
                               "shop_id IS NOT NULL", postgresql_not_valid=True)

# revision 2
def upgrade():
    op.execute("ALTER TABLE orders VALIDATE CONSTRAINT ck_orders_shop_id_not_null")

# revision 3: PostgreSQL 12+ uses the validated check and skips the scan
def upgrade():
    op.alter_column("orders", "shop_id", nullable=False)
    op.drop_constraint("ck_orders_shop_id_not_null", "orders", type_="check")""",
    check=check,
    nodes=ALTER_TABLE,
)
