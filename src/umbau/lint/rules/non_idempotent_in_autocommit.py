"""Statements in an autocommit block that fail when rerun after a crash."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pglast import ast

from umbau.lint.context import OT, LintContext, object_name, relname
from umbau.lint.model import WARNING, Hit, Rule


def _fix(node: Any) -> tuple[str, str] | None:
    """(what, the idempotent form) when ``node`` fails on a rerun, else None."""
    if isinstance(node, ast.IndexStmt) and not node.if_not_exists and node.idxname:
        return (f"CREATE INDEX {node.idxname}", f"CREATE INDEX CONCURRENTLY IF NOT EXISTS "
                f"{node.idxname} ON {relname(node.relation)} (...)")
    if isinstance(node, ast.DropStmt) and not node.missing_ok and node.removeType in (
            OT.OBJECT_INDEX, OT.OBJECT_TABLE):
        name = ", ".join(object_name(o) for o in node.objects or ())
        kind = "INDEX CONCURRENTLY" if node.concurrent else "TABLE"
        return f"DROP {kind} {name}", f"DROP {kind} IF EXISTS {name}"
    if isinstance(node, ast.AlterEnumStmt) and node.oldVal is None \
            and not node.skipIfNewValExists:
        enum = object_name(node.typeName)
        return (f"ALTER TYPE {enum} ADD VALUE '{node.newVal}'",
                f"ALTER TYPE {enum} ADD VALUE IF NOT EXISTS '{node.newVal}'")
    return None


def check(node: Any, ctx: LintContext) -> Iterator[Hit]:
    if ctx.in_transaction or ctx.unit is None or ctx.unit.kind != "revision":
        return
    found = _fix(node)
    if found is not None:
        what, fixed = found
        yield Hit(f"{what} runs outside the revision's transaction: if the revision fails "
                  "after it, the rerun fails here (already exists / does not exist); write "
                  f"{fixed}", safe=f'''with op.get_context().autocommit_block():
    op.execute("{fixed}")''')


RULE = Rule(
    id="non-idempotent-in-autocommit",
    title="statement in an autocommit block that fails on a rerun",
    lock="as the statement",
    blocks="the rerun of a failed revision",
    effect="a revision that crashed after its autocommit block cannot be run again",
    problem="""What runs in `autocommit_block()` commits at once and stays when the rest of
the revision fails and is rolled back. The rerun then executes the block again: a
`CREATE INDEX CONCURRENTLY` without `IF NOT EXISTS` fails with "already exists"
(and a failed concurrent build leaves an INVALID index behind), an `ADD VALUE`
without `IF NOT EXISTS` fails the same way. Write every statement in the block so
that it can run twice.""",
    safe="""def upgrade():
    with op.get_context().autocommit_block():
        op.create_index("ix_orders_shop_id", "orders", ["shop_id"],
                        postgresql_concurrently=True, if_not_exists=True)""",
    check=check,
    severity=WARNING,
)
