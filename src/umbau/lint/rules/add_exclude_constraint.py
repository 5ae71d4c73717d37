"""ADD CONSTRAINT … EXCLUDE on an existing table: built under ACCESS EXCLUSIVE, no NOT VALID."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from umbau.lint.context import CT, LintContext
from umbau.lint.model import Hit, Rule
from umbau.lint.rules._helpers import ALTER_TABLE, added_constraints, existing


def check(node: Any, ctx: LintContext) -> Iterator[Hit]:
    for table, constraint in added_constraints(node):
        if constraint.contype == CT.CONSTR_EXCLUSION and existing(ctx, table):
            name = constraint.conname or "the constraint"
            yield Hit(f"ADD CONSTRAINT {name} EXCLUDE builds its index on {table} under an "
                      "ACCESS EXCLUSIVE lock and has no NOT VALID form: add it while the table "
                      "is small, or in a maintenance window", table,
                      safe=f'''# no online form exists: run it in a maintenance window, with a short
# lock_timeout so it gives up instead of queueing every query behind it
def upgrade():
    op.execute("SET LOCAL lock_timeout = '2s'")
    op.execute("ALTER TABLE {table} ADD CONSTRAINT {name} EXCLUDE USING gist (...)")''')


RULE = Rule(
    id="add-exclude-constraint",
    title="exclusion constraint added to an existing table",
    lock="ACCESS EXCLUSIVE on the table",
    blocks="reads and writes while the constraint's index is built",
    effect="builds an index over the whole table and checks every row",
    problem="""An exclusion constraint is enforced by an index that `ADD CONSTRAINT … EXCLUDE`
builds under ACCESS EXCLUSIVE; unlike CHECK and FOREIGN KEY there is no `NOT VALID`
form, and unlike UNIQUE it cannot be attached from an index built CONCURRENTLY
(PostgreSQL docs, "ALTER TABLE": ADD table_constraint).""",
    safe="""def upgrade():
    op.execute("SET LOCAL lock_timeout = '2s'")
    op.execute("ALTER TABLE bookings ADD CONSTRAINT no_overlap "
               "EXCLUDE USING gist (room WITH =, during WITH &&)")""",
    check=check,
    nodes=ALTER_TABLE,
)
