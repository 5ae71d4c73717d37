"""ALTER COLUMN … TYPE that rewrites the table (binary-coercible changes do not)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from umbau.lint.context import AT, LintContext, TypeSig, type_sig
from umbau.lint.model import Hit, Rule
from umbau.lint.rules._helpers import ALTER_TABLE, commands, existing

_UNCONSTRAINABLE = {"varchar", "numeric", "varbit"}
_GROWABLE = {"varchar", "varbit"}


def binary_coercible(old: TypeSig, new: TypeSig) -> bool:
    """True when PostgreSQL changes the type without rewriting the table (or its indexes)."""
    if old.array != new.array:
        return False
    if old == new:
        return True
    if old.name == new.name:
        if not new.mods:
            return old.name in _UNCONSTRAINABLE
        if old.name in _GROWABLE and old.mods and new.mods[0] >= old.mods[0]:
            return True
        if old.name == "numeric" and len(old.mods) >= 1 and len(new.mods) >= 1:
            old_scale = old.mods[1] if len(old.mods) > 1 else 0
            new_scale = new.mods[1] if len(new.mods) > 1 else 0
            return new_scale == old_scale and new.mods[0] >= old.mods[0]
        return False
    if old.name == "varchar" and new.name == "text":
        return True
    if old.name == "text" and new.name == "varchar" and not new.mods:
        return True
    return old.name == "cidr" and new.name == "inet"


def _show(sig: TypeSig) -> str:
    mods = f"({','.join(map(str, sig.mods))})" if sig.mods else ""
    return f"{sig.name}{mods}{'[]' if sig.array else ''}"


def check(node: Any, ctx: LintContext) -> Iterator[Hit]:
    for table, cmd in commands(node, AT.AT_AlterColumnType):
        if not existing(ctx, table):
            continue
        new = type_sig(cmd.def_.typeName)
        old = ctx.column_type(table, cmd.name)
        if cmd.def_.raw_default is not None:
            yield Hit(f"ALTER COLUMN {cmd.name} TYPE {_show(new)} USING … rewrites all of {table} "
                      "under an ACCESS EXCLUSIVE lock: add a new column, dual-write, backfill, "
                      "switch, drop the old one", table, safe=_safe(table, cmd.name, new))
        elif old is None:
            yield Hit(f"the old type of {table}.{cmd.name} is not known here, so the change to "
                      f"{_show(new)} may rewrite {table} under an ACCESS EXCLUSIVE lock: only "
                      "binary-coercible changes (varchar(n) → varchar(m ≥ n) or text, numeric(p,s) "
                      "→ numeric(q ≥ p,s)) are safe", table, safe=_safe(table, cmd.name, new))
        elif not binary_coercible(old, new):
            yield Hit(f"changing {table}.{cmd.name} from {_show(old)} to {_show(new)} rewrites "
                      f"the table and its indexes under an ACCESS EXCLUSIVE lock: add a new column "
                      "and switch over (expand/contract)", table, safe=_safe(table, cmd.name, new))


def _safe(table: str, column: str, new: TypeSig) -> str:
    return f'''# expand/contract instead of rewriting {table} in place:
def upgrade():
    ops.change_type("{table}", "{column}", "{_show(new)}")  # umbau's helper: new column,
    # dual-write trigger, batched backfill; the old column goes in a later release
# plain SQL: ALTER TABLE {table} ADD COLUMN {column}_new {_show(new)}; a trigger keeping
# {column}_new in step; backfill in batches; switch reads; drop {column} later'''


RULE = Rule(
    id="alter-column-type",
    title="column type change that rewrites the table",
    lock="ACCESS EXCLUSIVE on the table",
    blocks="reads and writes for the whole rewrite",
    effect="rewrites the table and rebuilds its indexes",
    problem="""Changing a column's type rewrites the table and rebuilds every index on it
under an ACCESS EXCLUSIVE lock, unless the old type is binary-coercible to the new
one: `varchar(n)` → `varchar(m ≥ n)`, `varchar` → `text`, `numeric(p,s)` →
`numeric(q ≥ p,s)` or unconstrained `numeric`, `cidr` → `inet`. umbau knows the old
type from the revisions before and flags only real rewrites (and changes whose old
type it cannot know). A `USING` clause always rewrites.""",
    safe="""# expand: a new column, written by the application (or a trigger) from now on
def upgrade():
    op.add_column("invoices", sa.Column("amount_cents", sa.BigInteger(), nullable=True))

# backfill old rows in batches (`umbau backfill`), switch reads, then contract:
def upgrade():
    op.drop_column("invoices", "amount")""",
    check=check,
    nodes=ALTER_TABLE,
)
