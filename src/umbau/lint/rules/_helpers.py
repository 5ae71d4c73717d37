"""Small questions several rules ask of a parse tree."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pglast import ast

from umbau.lint.context import (
    AT,
    CT,
    LintContext,
    alter_cmds,
    column_constraints,
    relname,
    walk,
)

# Rule.nodes of rules that look only at ALTER TABLE commands (added_columns,
# added_constraints, commands: alter_cmds() gives nothing for any other statement), and
# of rules that look at the columns of CREATE TABLE and ALTER TABLE.
ALTER_TABLE: tuple[type, ...] = (ast.AlterTableStmt,)
TABLE_COLUMNS: tuple[type, ...] = (ast.CreateStmt, ast.AlterTableStmt)


def function_names(expr: Any) -> set[str]:
    return {
        str(n.funcname[-1].sval).lower()
        for n in walk(expr)
        if isinstance(n, ast.FuncCall) and n.funcname
    }


def added_columns(node: Any) -> Iterator[tuple[str, Any]]:
    """(table, ColumnDef) of every ALTER TABLE … ADD COLUMN."""
    for cmd in alter_cmds(node):
        if cmd.subtype == AT.AT_AddColumn and isinstance(cmd.def_, ast.ColumnDef):
            yield relname(node.relation), cmd.def_


def added_constraints(node: Any) -> Iterator[tuple[str, Any]]:
    """(table, Constraint) of every ALTER TABLE … ADD CONSTRAINT."""
    for cmd in alter_cmds(node):
        if cmd.subtype == AT.AT_AddConstraint and isinstance(cmd.def_, ast.Constraint):
            yield relname(node.relation), cmd.def_


def commands(node: Any, *subtypes: Any) -> Iterator[tuple[str, Any]]:
    for cmd in alter_cmds(node):
        if cmd.subtype in subtypes:
            yield relname(node.relation), cmd


def existing(ctx: LintContext, table: str) -> bool:
    """Not created in this unit: the table may hold rows and serve traffic."""
    return not ctx.is_new(table)


def constraint_of(column: Any, *types: Any) -> Any | None:
    return next((c for c in column_constraints(column) if c.contype in types), None)


def default_of(column: Any) -> Any | None:
    found = constraint_of(column, CT.CONSTR_DEFAULT)
    return found.raw_expr if found is not None else None


def py_table(table: str) -> str:
    """A table as Alembic's op functions take it: ``"orders"`` or ``"orders", schema="app"``."""
    schema, dot, name = table.partition(".")
    return f'"{name}", schema="{schema}"' if dot else f'"{table}"'


def string_values(node: Any) -> set[str]:
    """Every string constant in a statement (values an enum column may receive)."""
    return {str(getattr(n.val, "sval", "")) for n in walk(node)
            if isinstance(n, ast.A_Const) and isinstance(getattr(n, "val", None), ast.String)}
