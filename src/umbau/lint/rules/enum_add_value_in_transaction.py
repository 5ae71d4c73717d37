"""ALTER TYPE … ADD VALUE in a transaction (before PostgreSQL 12), or used in the same one."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pglast import ast

from umbau.lint.context import LintContext, object_name
from umbau.lint.model import Hit, Rule
from umbau.lint.rules._helpers import string_values


def _safe(enum: str, value: str) -> str:
    return f'''def upgrade():
    # the new value must be committed before anything uses it
    with op.get_context().autocommit_block():
        op.execute("ALTER TYPE {enum} ADD VALUE IF NOT EXISTS '{value}'")
    # uses of '{value}' after the block run in a new transaction'''


def check(node: Any, ctx: LintContext) -> Iterator[Hit]:
    if isinstance(node, ast.AlterEnumStmt) and node.oldVal is None and node.newVal \
            and ctx.in_transaction and ctx.target_version < 12:
        enum = object_name(node.typeName)
        yield Hit(f"before PostgreSQL 12 ALTER TYPE {enum} ADD VALUE cannot run inside a "
                  f"transaction block (target is {ctx.target_version}): run it in an "
                  "autocommit block", safe=_safe(enum, node.newVal))
        return
    if ctx.enum_values_added and not isinstance(node, ast.AlterEnumStmt):
        used = {(t, v) for t, v in ctx.enum_values_added if v in string_values(node)}
        for enum, value in sorted(used):
            yield Hit(f"'{value}' is added to {enum} in this transaction and used before it "
                      "commits: PostgreSQL refuses (unsafe use of new value); add the value "
                      "in an autocommit block first", safe=_safe(enum, value))


RULE = Rule(
    id="enum-add-value-in-transaction",
    title="enum value added and used in one transaction",
    lock="ACCESS EXCLUSIVE on the enum type (short)",
    blocks="the revision itself: it fails",
    effect="none: the statement is refused",
    problem="""Before PostgreSQL 12, `ALTER TYPE … ADD VALUE` cannot run inside a transaction
block at all. On every version, a value added in a transaction cannot be used (in an
UPDATE, INSERT, default or CHECK) until that transaction commits: "unsafe use of new
value" (PostgreSQL docs, "ALTER TYPE", Notes). Add the value in an autocommit block,
then use it.""",
    safe="""def upgrade():
    with op.get_context().autocommit_block():
        op.execute("ALTER TYPE order_status ADD VALUE IF NOT EXISTS 'refunded'")
    op.execute("UPDATE orders SET status = 'refunded' WHERE refunded_at IS NOT NULL")""",
    check=check,
)
