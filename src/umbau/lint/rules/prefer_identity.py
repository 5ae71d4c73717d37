"""serial columns (opt-in): identity columns are the SQL-standard, owned replacement."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from umbau.lint.context import LintContext, type_sig
from umbau.lint.model import WARNING, Hit, Rule
from umbau.lint.rules._helpers import TABLE_COLUMNS
from umbau.lint.rules.prefer_timestamptz import typed_columns

_SERIAL = {"serial": "Integer", "bigserial": "BigInteger", "smallserial": "SmallInteger"}


def check(node: Any, ctx: LintContext) -> Iterator[Hit]:
    for table, column, type_name in typed_columns(node):
        kind = type_sig(type_name).name
        if kind in _SERIAL:
            yield Hit(f"{table}.{column} is {kind}: use an identity column (GENERATED ALWAYS AS "
                      "IDENTITY), whose sequence belongs to the column and keeps its grants",
                      table, safe=f'sa.Column("{column}", sa.{_SERIAL[kind]}(), sa.Identity('
                                  f'always=True), primary_key=True)  # on {table}')


RULE = Rule(
    id="prefer-identity",
    title="serial column (prefer identity)",
    lock="none",
    blocks="nothing now",
    effect="none",
    problem="""`serial` creates a separate sequence with a default: permissions, ownership
and copying the table (`CREATE TABLE … LIKE`) each need care, and values can be
written around it. An identity column (PostgreSQL 10+) is the SQL-standard form whose
sequence is part of the column (PostgreSQL docs, "CREATE TABLE": GENERATED … AS
IDENTITY).""",
    safe="""sa.Column("id", sa.BigInteger(), sa.Identity(always=True), primary_key=True)""",
    check=check,
    nodes=TABLE_COLUMNS,
    severity=WARNING,
    opt_in=True,
)
