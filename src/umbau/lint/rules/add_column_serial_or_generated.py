"""Adding a serial, identity or stored generated column to an existing table."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from umbau.lint.context import CT, LintContext
from umbau.lint.model import Hit, Rule
from umbau.lint.rules._helpers import ALTER_TABLE, added_columns, constraint_of, existing, py_table

_SERIALS = {"serial", "bigserial", "smallserial", "serial4", "serial8", "serial2"}


def check(node: Any, ctx: LintContext) -> Iterator[Hit]:
    for table, column in added_columns(node):
        if not existing(ctx, table):
            continue
        type_name = column.typeName.names[-1].sval.lower() if column.typeName else ""
        if type_name in _SERIALS:
            kind = type_name
        elif constraint_of(column, CT.CONSTR_IDENTITY) is not None:
            kind = "identity"
        elif constraint_of(column, CT.CONSTR_GENERATED) is not None:
            kind = "stored generated"
        else:
            continue
        yield Hit(f"adding the {kind} column {column.colname} fills every row of {table}: "
                  "PostgreSQL rewrites the table under an ACCESS EXCLUSIVE lock", table,
                  safe=f'''def upgrade():
    op.add_column({py_table(table)}, sa.Column("{column.colname}", sa.BigInteger(), nullable=True))
    op.execute("CREATE SEQUENCE IF NOT EXISTS {table}_{column.colname}_seq OWNED BY "
               "{table}.{column.colname}")
    op.alter_column({py_table(table)}, "{column.colname}",
                    server_default=sa.text("nextval('{table}_{column.colname}_seq')"))
# then number the old rows in batches (`umbau backfill`), and set NOT NULL safely''')


RULE = Rule(
    id="add-column-serial-or-generated",
    title="serial, identity or stored generated column added to an existing table",
    lock="ACCESS EXCLUSIVE on the table",
    blocks="reads and writes for the whole rewrite",
    effect="rewrites the table and all its indexes",
    problem="""A `serial`/`bigserial` column, an `IDENTITY` column or a `GENERATED … STORED`
column needs a value in every existing row, computed per row, so PostgreSQL rewrites
the table under an ACCESS EXCLUSIVE lock.""",
    safe="""# 1: a plain nullable column; new rows get values from a sequence default
def upgrade():
    op.execute("CREATE SEQUENCE documents_seq_no_seq")
    op.add_column("documents", sa.Column("seq_no", sa.BigInteger(), nullable=True))
    op.alter_column("documents", "seq_no",
                    server_default=sa.text("nextval('documents_seq_no_seq')"))
# 2: fill old rows in batches (`umbau backfill`), 3: NOT NULL the safe way (set-not-null)""",
    check=check,
    nodes=ALTER_TABLE,
)
