"""varchar(n) (opt-in): text with a CHECK is easier to change."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from umbau.lint.context import LintContext, type_sig
from umbau.lint.model import WARNING, Hit, Rule
from umbau.lint.rules._helpers import TABLE_COLUMNS
from umbau.lint.rules.prefer_timestamptz import typed_columns


def check(node: Any, ctx: LintContext) -> Iterator[Hit]:
    for table, column, type_name in typed_columns(node):
        sig = type_sig(type_name)
        if sig.name == "varchar" and sig.mods:
            yield Hit(f"{table}.{column} is varchar({sig.mods[0]}): use text (with a CHECK on "
                      "length() if the limit matters)", table,
                      safe=f'sa.Column("{column}", sa.Text(), sa.CheckConstraint('
                           f'"length({column}) <= {sig.mods[0]}"))  # on {table}')


RULE = Rule(
    id="prefer-text-over-varchar",
    title="varchar(n) column",
    lock="none",
    blocks="nothing now",
    effect="lowering the limit later rewrites the table",
    problem="""`varchar(n)` is stored like `text`; the limit only adds a check that is
awkward to change (lowering it rewrites the table). `text` plus a `CHECK
(length(col) <= n)` constraint, added NOT VALID, can be changed without a rewrite.
Opt in with `enable = ["prefer-text-over-varchar"]`.""",
    safe="""def upgrade():
    op.add_column("customers", sa.Column("vat_id", sa.Text(), nullable=True))
    op.create_check_constraint("ck_customers_vat_id_length", "customers",
                               "length(vat_id) <= 32", postgresql_not_valid=True)""",
    check=check,
    nodes=TABLE_COLUMNS,
    severity=WARNING,
    opt_in=True,
)
