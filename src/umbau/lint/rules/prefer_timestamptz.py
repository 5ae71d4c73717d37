"""timestamp without time zone (opt-in)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pglast import ast

from umbau.lint.context import AT, LintContext, relname, type_sig
from umbau.lint.model import WARNING, Hit, Rule
from umbau.lint.rules._helpers import TABLE_COLUMNS, added_columns, commands


def typed_columns(node: Any) -> Iterator[tuple[str, str, Any]]:
    """(table, column, TypeName) of columns created, added or retyped by ``node``."""
    if isinstance(node, ast.CreateStmt):
        for element in node.tableElts or ():
            if isinstance(element, ast.ColumnDef) and element.typeName is not None:
                yield relname(node.relation), str(element.colname), element.typeName
    for table, column in added_columns(node):
        if column.typeName is not None:
            yield table, column.colname, column.typeName
    for table, cmd in commands(node, AT.AT_AlterColumnType):
        yield table, cmd.name, cmd.def_.typeName


def check(node: Any, ctx: LintContext) -> Iterator[Hit]:
    for table, column, type_name in typed_columns(node):
        if type_sig(type_name).name == "timestamp":
            yield Hit(f"{table}.{column} is timestamp without time zone: use timestamptz "
                      "(sa.DateTime(timezone=True))", table,
                      safe=f'sa.Column("{column}", sa.DateTime(timezone=True))  # on {table}')


RULE = Rule(
    id="prefer-timestamptz",
    title="timestamp without time zone",
    lock="none",
    blocks="nothing now",
    effect="changing it later rewrites the table",
    problem="""`timestamp without time zone` stores wall-clock time without saying which
zone; values written from servers or sessions in different zones cannot be compared.
`timestamptz` stores an instant. Opt in with `enable = ["prefer-timestamptz"]`.""",
    safe="""def upgrade():
    op.add_column("orders", sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True))""",
    check=check,
    nodes=TABLE_COLUMNS,
    severity=WARNING,
    opt_in=True,
)
