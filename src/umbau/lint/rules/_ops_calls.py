"""What the ``umbau.ops`` calls of the revision being linted make safe.

A contract step (``ops.contract_rename_column``, ``ops.contract_change_type``) drops a
column, and renames a shadow column, only after the old application version is gone
(a post-deploy revision) and its backfill has finished and verified; the helper refuses
otherwise. ``ops.rename_table`` leaves an updatable view under the old name. The
rules that would flag those statements ask here, reading the revision's own calls
(literal arguments only: a name computed at run time is not trusted).
"""

from __future__ import annotations

import ast as pyast
from dataclasses import dataclass, field

from umbau.lint.context import LintContext


@dataclass(frozen=True)
class OpsCalls:
    dropped: set[tuple[str, str]] = field(default_factory=set)  # (table, column)
    renamed_columns: set[tuple[str, str, str]] = field(default_factory=set)  # table, old, new
    renamed_tables: set[tuple[str, str]] = field(default_factory=set)  # (old, new)


def ops_calls(ctx: LintContext) -> OpsCalls:
    """The contract and rename_table calls in the unit's revision file."""
    found = OpsCalls()
    tree = ctx.unit.python_tree() if ctx.unit is not None else None
    for node in pyast.walk(tree) if tree is not None else ():
        if isinstance(node, pyast.Call) and isinstance(node.func, pyast.Attribute):
            _note(node.func.attr, _literals(node), found)
    return found


def _literals(call: pyast.Call) -> list[str]:
    out = []
    for arg in call.args:
        if not (isinstance(arg, pyast.Constant) and isinstance(arg.value, str)):
            break
        out.append(arg.value)
    return out


def _note(name: str, args: list[str], found: OpsCalls) -> None:
    if name == "contract_rename_column" and len(args) >= 2:
        found.dropped.add((args[0], args[1]))
    elif name == "contract_change_type" and len(args) >= 2:
        found.dropped.add((args[0], args[1]))
        from umbau.ops._names import shadow_column  # only for revisions that call ops

        found.renamed_columns.add((args[0], shadow_column(args[1]), args[1]))
    elif name == "rename_table" and len(args) >= 2:
        found.renamed_tables.add((args[0], args[1]))
