"""ADD UNIQUE that builds its index under the table lock (also inline on ADD COLUMN)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from umbau.lint.context import CT, LintContext
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
        if constraint.contype == CT.CONSTR_UNIQUE and not constraint.indexname \
                and existing(ctx, table):
            yield Hit(f"ADD UNIQUE on {table} builds the index under an ACCESS EXCLUSIVE lock: "
                      "create a unique index CONCURRENTLY, then ADD CONSTRAINT … UNIQUE USING "
                      "INDEX", table, safe=_safe(table, constraint))
    for table, column in added_columns(node):
        if constraint_of(column, CT.CONSTR_UNIQUE) is not None and existing(ctx, table):
            yield Hit(f"ADD COLUMN {column.colname} … UNIQUE builds a unique index on {table} "
                      "under an ACCESS EXCLUSIVE lock: add the column, then the index "
                      "CONCURRENTLY, then the constraint USING INDEX", table,
                      safe=_column_safe(table, column.colname))


def _safe(table: str, constraint: Any) -> str:
    columns = [str(k.sval) for k in constraint.keys or ()]
    name = constraint.conname or f"uq_{table.replace('.', '_')}_{'_'.join(columns)}"
    cols = ", ".join(columns)
    quoted = ", ".join(f'"{c}"' for c in columns)
    return f'''def upgrade():
    with op.get_context().autocommit_block():
        op.execute("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {table} ({cols})")
    op.execute("ALTER TABLE {table} ADD CONSTRAINT {name} UNIQUE USING INDEX {name}")
    # or, with umbau's helpers: ops.add_unique("{name}", "{table}", [{quoted}])'''


def _column_safe(table: str, column: str) -> str:
    name = f"uq_{table.replace('.', '_')}_{column}"
    return f'''def upgrade():
    op.add_column({py_table(table)}, sa.Column("{column}", ...))
    with op.get_context().autocommit_block():
        op.execute("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {table} ({column})")
    op.execute("ALTER TABLE {table} ADD CONSTRAINT {name} UNIQUE USING INDEX {name}")
    # or, with umbau's helpers: ops.add_unique("{name}", "{table}", ["{column}"])'''


RULE = Rule(
    id="add-unique-constraint",
    title="unique constraint that builds its index under the table lock",
    lock="ACCESS EXCLUSIVE on the table",
    blocks="reads and writes while the unique index is built",
    effect="scans the whole table to build the index",
    problem="""`ADD CONSTRAINT … UNIQUE (…)` (and `UNIQUE` inline on `ADD COLUMN`) builds a
unique index while holding an ACCESS EXCLUSIVE lock. Build the index
`CONCURRENTLY` first; attaching it with `UNIQUE USING INDEX` is then instant.""",
    safe="""def upgrade():
    with op.get_context().autocommit_block():
        op.create_index("uq_users_email", "users", ["email"], unique=True,
                        postgresql_concurrently=True, if_not_exists=True)
    op.execute("ALTER TABLE users ADD CONSTRAINT uq_users_email "
               "UNIQUE USING INDEX uq_users_email")""",
    check=check,
    nodes=ALTER_TABLE,
)
