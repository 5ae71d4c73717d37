"""Integer primary keys (opt-in): they run out at 2.1 billion."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pglast import ast

from umbau.lint.context import CT, LintContext, relname, type_sig
from umbau.lint.model import WARNING, Hit, Rule
from umbau.lint.rules._helpers import TABLE_COLUMNS, added_columns, constraint_of

_SMALL = {"int4", "int2", "serial", "smallserial"}


def _columns(node: Any) -> Iterator[tuple[str, Any, set[str]]]:
    """(table, ColumnDef, primary key columns of the table constraint) of new columns."""
    if isinstance(node, ast.CreateStmt):
        keys: set[str] = set()
        for element in node.tableElts or ():
            if isinstance(element, ast.Constraint) and element.contype == CT.CONSTR_PRIMARY:
                keys |= {k.sval for k in element.keys or ()}
        for element in node.tableElts or ():
            if isinstance(element, ast.ColumnDef):
                yield relname(node.relation), element, keys
    for table, column in added_columns(node):
        yield table, column, set()


def check(node: Any, ctx: LintContext) -> Iterator[Hit]:
    for table, column, keys in _columns(node):
        primary = column.colname in keys or constraint_of(column, CT.CONSTR_PRIMARY) is not None
        if primary and column.typeName is not None and type_sig(column.typeName).name in _SMALL:
            yield Hit(f"{table}.{column.colname} is a 32-bit primary key and runs out at "
                      "2,147,483,647: use bigint (BigInteger / bigserial / identity)", table,
                      safe=f'sa.Column("{column.colname}", sa.BigInteger(), sa.Identity(), '
                           f'primary_key=True)  # on {table}')


RULE = Rule(
    id="prefer-bigint-primary-key",
    title="32-bit integer primary key",
    lock="none",
    blocks="nothing now",
    effect="changing it later rewrites the table and every referencing table",
    problem="""An `integer` key allows 2,147,483,647 rows (fewer with gaps). Moving it to
`bigint` later rewrites the table and every table that references it. Opt in with
`enable = ["prefer-bigint-primary-key"]`.""",
    safe="""def upgrade():
    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
    )""",
    check=check,
    nodes=TABLE_COLUMNS,
    severity=WARNING,
    opt_in=True,
)
