"""A revision whose downgrade() is missing, empty, `pass` or raises NotImplementedError."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from umbau.lint.context import LintContext, Unit
from umbau.lint.model import WARNING, Hit, Rule

_DOWNGRADE = re.compile(r"^def downgrade\b[^\n]*\n((?:[ \t]+[^\n]*\n|[ \t]*\n)*)", re.M)
_TRIVIAL = ("#", "pass", "...", "raise", '"', "'")


def clearly_written(source: str) -> bool:
    """True when ``downgrade()``'s body has a line of real code (read from the text, which is
    much cheaper than parsing the file). Docstrings over several lines: not decided here."""
    found = _DOWNGRADE.search(source)
    if found is None or '"""' in found.group(1) or "\'\'\'" in found.group(1):
        return False
    lines = (line.strip() for line in found.group(1).splitlines())
    return any(line and not line.startswith(_TRIVIAL) for line in lines)


def _functions(tree: ast.Module | None) -> dict[str, ast.FunctionDef]:
    if tree is None:
        return {}
    return {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}


def _empty(func: ast.FunctionDef) -> bool:
    for stmt in func.body:
        if isinstance(stmt, ast.Pass):
            continue
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            continue  # a docstring or ``...``
        return False
    return True


def _refuses(func: ast.FunctionDef) -> bool:
    body = [s for s in func.body if not (isinstance(s, ast.Expr)
                                         and isinstance(s.value, ast.Constant))]
    if len(body) != 1 or not isinstance(body[0], ast.Raise) or body[0].exc is None:
        return False
    exc = body[0].exc.func if isinstance(body[0].exc, ast.Call) else body[0].exc
    return isinstance(exc, ast.Name) and exc.id == "NotImplementedError"


def check_unit(unit: Unit, ctx: LintContext) -> Iterator[Hit]:
    if unit.kind != "revision" or not unit.source or unit.direction != "upgrade":
        return
    if clearly_written(unit.source):
        return  # most revisions: no need to parse the file
    funcs = _functions(unit.python_tree())
    upgrade, downgrade = funcs.get("upgrade"), funcs.get("downgrade")
    if upgrade is None or _empty(upgrade):
        return  # a merge point or an empty revision has nothing to undo
    if downgrade is None:
        yield Hit(f"revision {unit.id} has no downgrade(): write one, so a failed release can "
                  "be rolled back without a restore", line=upgrade.lineno)
    elif _empty(downgrade):
        yield Hit(f"downgrade() of {unit.id} does nothing, so `umbau downgrade` would only move "
                  "the version: write the reverse of upgrade()", line=downgrade.lineno)
    elif _refuses(downgrade):
        yield Hit(f"downgrade() of {unit.id} raises NotImplementedError: write it, or keep this "
                  "ignore with the reason it cannot be reversed", line=downgrade.lineno)


RULE = Rule(
    id="missing-downgrade",
    title="downgrade() missing, empty or not written",
    lock="none",
    blocks="nothing now; a rollback later",
    effect="the revision cannot be rolled back without restoring a backup",
    problem="""When a release fails, the fast way back is `umbau downgrade`. A revision
without a real `downgrade()` (missing, `pass`, or `raise NotImplementedError`) leaves
only a restore from backup. If a revision truly cannot be reversed, say so with an
ignore and the reason.""",
    safe="""def upgrade():
    op.add_column("documents", sa.Column("confidence_score", sa.Float(), nullable=True))


def downgrade():
    op.drop_column("documents", "confidence_score")""",
    check_unit=check_unit,
    severity=WARNING,
)
