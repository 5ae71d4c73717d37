"""ADD PRIMARY KEY that builds its index under the table lock."""

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
)


def check(node: Any, ctx: LintContext) -> Iterator[Hit]:
    for table, constraint in added_constraints(node):
        if constraint.contype == CT.CONSTR_PRIMARY and not constraint.indexname \
                and existing(ctx, table):
            yield Hit(f"ADD PRIMARY KEY on {table} builds its index (and checks NOT NULL) under "
                      "an ACCESS EXCLUSIVE lock: create a unique index CONCURRENTLY, then ADD "
                      "PRIMARY KEY USING INDEX", table, safe=_safe(table, constraint))
    for table, column in added_columns(node):
        if constraint_of(column, CT.CONSTR_PRIMARY) is not None and existing(ctx, table):
            yield Hit(f"ADD COLUMN {column.colname} … PRIMARY KEY builds the key's index on "
                      f"{table} under an ACCESS EXCLUSIVE lock", table,
                      safe=_key_safe(table, str(column.colname)))


def _safe(table: str, constraint: Any) -> str:
    columns = ", ".join(str(k.sval) for k in constraint.keys or ())
    name = constraint.conname or f"{table.split('.')[-1]}_pkey"
    return f'''def upgrade():
    with op.get_context().autocommit_block():
        op.execute("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {table} ({columns})")
    # the key's columns must be NOT NULL already (see set-not-null for the safe way)
    op.execute("ALTER TABLE {table} ADD CONSTRAINT {name} PRIMARY KEY USING INDEX {name}")'''


def _key_safe(table: str, column: str) -> str:
    name = f"{table.split('.')[-1]}_pkey"
    return f'''def upgrade():
    op.execute("ALTER TABLE {table} ADD COLUMN {column} bigint")  # nullable, no key yet
# fill {column} in batches (`umbau backfill`), set NOT NULL safely, then:
#   CREATE UNIQUE INDEX CONCURRENTLY {name} ON {table} ({column});
#   ALTER TABLE {table} ADD CONSTRAINT {name} PRIMARY KEY USING INDEX {name};'''


RULE = Rule(
    id="add-primary-key",
    title="primary key that builds its index under the table lock",
    lock="ACCESS EXCLUSIVE on the table",
    blocks="reads and writes while the index is built and NOT NULL is checked",
    effect="scans the whole table",
    problem="""`ADD PRIMARY KEY (…)` builds a unique index and sets the columns NOT NULL
while holding an ACCESS EXCLUSIVE lock. Build the unique index `CONCURRENTLY`, make
the columns NOT NULL the safe way, then attach the index with
`PRIMARY KEY USING INDEX`.""",
    safe="""def upgrade():
    with op.get_context().autocommit_block():
        op.create_index("pk_events", "events", ["id"], unique=True,
                        postgresql_concurrently=True, if_not_exists=True)
    # id must already be NOT NULL (see set-not-null), or this scans the table
    op.execute("ALTER TABLE events ADD CONSTRAINT pk_events PRIMARY KEY USING INDEX pk_events")""",
    check=check,
    nodes=ALTER_TABLE,
)
