"""A foreign key added (or an ADD COLUMN … REFERENCES) without NOT VALID."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from umbau.lint.context import CT, LintContext, relname
from umbau.lint.model import Hit, Rule
from umbau.lint.rules._helpers import (
    ALTER_TABLE,
    added_columns,
    added_constraints,
    constraint_of,
    existing,
    py_table,
)


def check(node: Any, ctx: LintContext) -> Iterator[Hit]:
    for table, constraint in added_constraints(node):
        if constraint.contype == CT.CONSTR_FOREIGN and not constraint.skip_validation \
                and existing(ctx, table):
            other = relname(constraint.pktable)
            yield Hit(f"the foreign key {constraint.conname or ''} on {table} is validated at "
                      f"once, blocking writes to {table} and {other} during the scan: add it NOT "
                      "VALID, then VALIDATE in a later revision", table,
                      safe=_safe(table, other, constraint))
    for table, column in added_columns(node):
        fk = constraint_of(column, CT.CONSTR_FOREIGN)
        if fk is not None and existing(ctx, table):
            other = relname(fk.pktable)
            yield Hit(f"ADD COLUMN {column.colname} … REFERENCES {other} validates the new "
                      f"foreign key at once and locks {table} and {other} against writes: add the "
                      "column, then the constraint NOT VALID, then VALIDATE", table,
                      safe=_column_safe(table, str(column.colname), other))


def _safe(table: str, other: str, constraint: Any) -> str:
    name = constraint.conname or f"fk_{table.replace('.', '_')}_{other.replace('.', '_')}"
    local = ", ".join(f'"{a.sval}"' for a in constraint.fk_attrs or ())
    remote = ", ".join(f'"{a.sval}"' for a in constraint.pk_attrs or ()) or '"id"'
    return f'''def upgrade():
    op.create_foreign_key("{name}", {py_table(table).split(", schema=")[0]}, "{other}",
                          [{local}], [{remote}], postgresql_not_valid=True)
    # or, with umbau's helpers:
    # ops.add_foreign_key("{name}", "{table}", "{other}", [{local}], [{remote}])

# a later revision (SHARE UPDATE EXCLUSIVE: reads and writes go on):
def upgrade():
    op.execute("ALTER TABLE {table} VALIDATE CONSTRAINT {name}")'''


def _column_safe(table: str, column: str, other: str) -> str:
    name = f"fk_{table.replace('.', '_')}_{column}"
    return f'''def upgrade():
    op.add_column({py_table(table)}, sa.Column("{column}", sa.BigInteger(), nullable=True))
    op.execute("ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY ({column}) "
               "REFERENCES {other} NOT VALID")

# a later revision (SHARE UPDATE EXCLUSIVE: reads and writes go on):
def upgrade():
    op.execute("ALTER TABLE {table} VALIDATE CONSTRAINT {name}")'''


RULE = Rule(
    id="foreign-key-not-valid",
    title="foreign key validated while it is added",
    lock="SHARE ROW EXCLUSIVE on both the table and the referenced table",
    blocks="writes on both tables until the validation scan ends",
    effect="scans the table to check every row",
    problem="""Adding a foreign key checks every existing row while holding a SHARE ROW
EXCLUSIVE lock on *both* tables, so writes to both wait for the whole scan. With
`NOT VALID` the constraint is added instantly and enforced for new rows;
`VALIDATE CONSTRAINT` later checks the old rows under a SHARE UPDATE EXCLUSIVE lock
that lets reads and writes go on. An inline `REFERENCES` on `ADD COLUMN` cannot be
NOT VALID, so add the column and the constraint separately.""",
    safe="""# revision 1
def upgrade():
    op.add_column("orders", sa.Column("shop_id", sa.BigInteger(), nullable=True))
    op.create_foreign_key("fk_orders_shop_id", "orders", "shops", ["shop_id"], ["id"],
                          postgresql_not_valid=True)

# revision 2 (its own transaction)
def upgrade():
    op.execute("ALTER TABLE orders VALIDATE CONSTRAINT fk_orders_shop_id")""",
    check=check,
    nodes=ALTER_TABLE,
)
