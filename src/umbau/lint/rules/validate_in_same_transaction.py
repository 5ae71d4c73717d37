"""NOT VALID and VALIDATE CONSTRAINT in one transaction."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from umbau.lint.context import AT, LintContext
from umbau.lint.model import Hit, Rule
from umbau.lint.rules._helpers import ALTER_TABLE, commands, existing


def check(node: Any, ctx: LintContext) -> Iterator[Hit]:
    for table, cmd in commands(node, AT.AT_ValidateConstraint):
        # a table created in this revision is empty: its validation scan is instant
        if (table, cmd.name) in ctx.not_valid_in_transaction and existing(ctx, table):
            yield Hit(f"{cmd.name} is added NOT VALID and validated in the same transaction, "
                      f"so the ADD's lock on {table} is held through the validation scan: "
                      "VALIDATE in a separate revision", table,
                      safe=f'''# this revision: only the ADD CONSTRAINT … NOT VALID
# the next revision (its own transaction; SHARE UPDATE EXCLUSIVE):
def upgrade():
    op.execute("ALTER TABLE {table} VALIDATE CONSTRAINT {cmd.name}")''')


RULE = Rule(
    id="validate-in-same-transaction",
    title="NOT VALID and VALIDATE in one transaction",
    lock="the ADD CONSTRAINT's lock (ACCESS EXCLUSIVE, or SHARE ROW EXCLUSIVE for a foreign key)",
    blocks="reads and/or writes for the whole validation scan",
    effect="scans the whole table while the strong lock is held",
    problem="""`NOT VALID` only helps when the validation runs in a *different*
transaction: locks are held until the transaction ends, so validating in the same
transaction keeps the strong lock of `ADD CONSTRAINT` during the full scan — the
same as adding the constraint validated.""",
    safe="""# revision 1
def upgrade():
    op.create_foreign_key("fk_orders_shop_id", "orders", "shops", ["shop_id"], ["id"],
                          postgresql_not_valid=True)

# revision 2: umbau runs every revision in its own transaction
def upgrade():
    op.execute("ALTER TABLE orders VALIDATE CONSTRAINT fk_orders_shop_id")""",
    check=check,
    nodes=ALTER_TABLE,
)
