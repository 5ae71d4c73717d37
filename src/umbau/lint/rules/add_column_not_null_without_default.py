"""ADD COLUMN … NOT NULL without a DEFAULT on an existing table."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from umbau.lint.context import CT, LintContext
from umbau.lint.model import Hit, Rule
from umbau.lint.rules._helpers import (
    ALTER_TABLE,
    added_columns,
    constraint_of,
    default_of,
    existing,
    py_table,
)


def check(node: Any, ctx: LintContext) -> Iterator[Hit]:
    for table, column in added_columns(node):
        filled = constraint_of(column, CT.CONSTR_IDENTITY, CT.CONSTR_GENERATED)
        serial = column.typeName is not None and column.typeName.names[-1].sval.lower() in {
            "serial", "bigserial", "smallserial", "serial4", "serial8", "serial2"}
        if constraint_of(column, CT.CONSTR_NOTNULL) is not None and default_of(column) is None \
                and filled is None and not serial and existing(ctx, table):
            yield Hit(f"ADD COLUMN {column.colname} NOT NULL without a default fails as soon as "
                      f"{table} has a row: add it nullable (or with a default), backfill, then "
                      "make it NOT NULL", table, safe=_safe(table, column.colname))


def _safe(table: str, column: str) -> str:
    return f'''def upgrade():
    op.add_column({py_table(table)}, sa.Column("{column}", ..., nullable=True))
# backfill {table}.{column} in batches (`umbau backfill`), then in a later revision:
#   ops.set_not_null("{table}", "{column}")  # CHECK NOT VALID, VALIDATE, SET NOT NULL'''


RULE = Rule(
    id="add-column-not-null-without-default",
    title="NOT NULL column added without a default",
    lock="ACCESS EXCLUSIVE on the table",
    blocks="reads and writes (briefly), then the revision fails",
    effect="fails with 23502 not_null_violation when the table has rows",
    problem="""Adding a `NOT NULL` column without a default cannot succeed on a table with
rows: every existing row would be NULL. It works on the empty development database
and fails in production.""",
    safe="""# revision 1: nullable, or with a constant default (no rewrite from PostgreSQL 11)
def upgrade():
    op.add_column("documents", sa.Column("status", sa.Text(), nullable=True))

# then backfill in batches (`umbau backfill`), and make it NOT NULL the safe way
# (CHECK … NOT VALID, VALIDATE, SET NOT NULL: see set-not-null)""",
    check=check,
    nodes=ALTER_TABLE,
)
