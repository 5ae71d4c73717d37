"""char(n) columns (opt-in): blank-padded, and no faster than text."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from umbau.lint.context import LintContext, type_sig
from umbau.lint.model import WARNING, Hit, Rule
from umbau.lint.rules._helpers import TABLE_COLUMNS, py_table
from umbau.lint.rules.prefer_timestamptz import typed_columns


def check(node: Any, ctx: LintContext) -> Iterator[Hit]:
    for table, column, type_name in typed_columns(node):
        sig = type_sig(type_name)
        if sig.name == "bpchar":
            size = sig.mods[0] if sig.mods else 1
            yield Hit(f"{table}.{column} is char({size}): blank-padded and no faster than text; "
                      "use text with a CHECK on length() if the length matters", table,
                      safe=f'op.add_column({py_table(table)}, sa.Column("{column}", sa.Text(), '
                           f'sa.CheckConstraint("length({column}) = {size}"), nullable=True))')


RULE = Rule(
    id="prefer-text-over-char",
    title="char(n) column",
    lock="none",
    blocks="nothing now",
    effect="none now; widening or changing it later may rewrite the table",
    problem="""`char(n)` pads values with blanks to n characters, ignores trailing blanks in
comparisons and is never faster than `text` in PostgreSQL. Use `text`, with a CHECK
on `length()` when the length is a rule (PostgreSQL docs, "8.3. Character Types",
tip).""",
    safe="""op.add_column("shops", sa.Column("country", sa.Text(),
              sa.CheckConstraint("length(country) = 2"), nullable=True))""",
    check=check,
    nodes=TABLE_COLUMNS,
    severity=WARNING,
    opt_in=True,
)
