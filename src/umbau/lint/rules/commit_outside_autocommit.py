"""A COMMIT in a revision outside ``autocommit_block()``: half a revision becomes permanent."""

from __future__ import annotations

import ast as pyast
from collections.abc import Iterator

from pglast import ast, enums

from umbau.lint.context import LintContext, Unit
from umbau.lint.model import Hit, Rule


def autocommit_lines(tree: pyast.Module | None) -> set[int]:
    """The lines whose COMMIT/BEGIN is Alembic's own: ``with …autocommit_block():``
    statements, and calls of umbau's ``ops.*`` helpers, which open their autocommit
    blocks themselves (VALIDATE in its own transaction, concurrent index builds)."""
    lines: set[int] = set()
    for node in pyast.walk(tree) if tree is not None else ():
        if isinstance(node, pyast.With | pyast.AsyncWith) and any(
                "autocommit_block" in pyast.unparse(item.context_expr) for item in node.items):
            lines.add(node.lineno)
            lines.update(range(node.lineno, (node.body[0].lineno if node.body else node.lineno)))
        elif isinstance(node, pyast.Call) and isinstance(node.func, pyast.Attribute) \
                and isinstance(node.func.value, pyast.Name) and node.func.value.id == "ops":
            lines.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    return lines


def check_unit(unit: Unit, ctx: LintContext) -> Iterator[Hit]:
    if unit.kind != "revision":
        return
    commits = [s for s in unit.statements if isinstance(s.node, ast.TransactionStmt)
               and s.node.kind == enums.TransactionStmtKind.TRANS_STMT_COMMIT]
    allowed = autocommit_lines(unit.python_tree()) if commits else set()  # walk only if needed
    for stmt in commits:
        if stmt.line not in allowed:
            yield Hit("the revision commits half way: what ran before is permanent even if the "
                      "rest fails, and umbau cannot roll the step back or retry it; put the "
                      "part that must commit on its own in `with op.get_context()."
                      "autocommit_block():`", line=stmt.line, safe=_SAFE)


_SAFE = """def upgrade():
    op.add_column("orders", sa.Column("shop_id", sa.BigInteger(), nullable=True))
    # instead of op.execute("COMMIT") / op.get_bind().commit():
    with op.get_context().autocommit_block():
        op.execute("CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_orders_shop_id "
                   "ON orders (shop_id)")"""

RULE = Rule(
    id="commit-outside-autocommit",
    title="COMMIT in a revision outside an autocommit block",
    lock="none",
    blocks="nothing; the revision is no longer atomic",
    effect="a failure after the COMMIT leaves the revision half applied",
    problem="""umbau runs each revision in one transaction, so a failed revision leaves nothing
behind and a lock timeout can be retried. A `COMMIT` in the middle
(`op.execute("COMMIT")`, `op.get_bind().commit()`) makes the first half permanent:
a failure later leaves the revision partially applied, and a retry meets its own
leftovers. Alembic's `autocommit_block()` is the supported way to leave the
transaction; umbau knows about it.""",
    safe=_SAFE,
    check_unit=check_unit,
)
