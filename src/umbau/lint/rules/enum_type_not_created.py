"""A column of a type that no revision creates: the upgrade fails on a fresh database."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pglast import ast

from umbau.lint.builtins import type_names
from umbau.lint.context import _ALIASES, LintContext, relname
from umbau.lint.model import Hit, Rule
from umbau.lint.rules._helpers import TABLE_COLUMNS, added_columns, py_table


def _columns(node: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(node, ast.CreateStmt):
        for element in node.tableElts or ():
            if isinstance(element, ast.ColumnDef):
                yield relname(node.relation), element
    yield from added_columns(node)


def _type_name(column: Any) -> tuple[str | None, str] | None:
    names = [str(n.sval) for n in column.typeName.names if isinstance(n, ast.String)] \
        if column.typeName is not None else []
    if not names:
        return None
    return (names[0] if len(names) > 1 else None), names[-1]


def check(node: Any, ctx: LintContext) -> Iterator[Hit]:
    if ctx.extensions:  # an extension's types (citext, hstore…) are not known here
        return
    for table, column in _columns(node):
        found = _type_name(column)
        if found is None or found[0] == "pg_catalog":
            continue
        name = found[1].lower()
        known = type_names() | set(_ALIASES) | set(ctx.tables) | ctx.types_created
        if name not in known and found[1] not in ctx.types_created:
            yield Hit(f"{table}.{column.colname} has type {found[1]}, which no revision creates: "
                      "on a fresh database the upgrade fails (type does not exist); create the "
                      "type in this revision (and drop it in the downgrade)", table,
                      safe=_safe(table, column.colname, found[1]))


def _safe(table: str, column: str, enum: str) -> str:
    return f'''def upgrade():
    {enum} = postgresql.ENUM(..., name="{enum}")  # the type's values
    {enum}.create(op.get_bind(), checkfirst=True)
    op.add_column({py_table(table)}, sa.Column("{column}", {enum}, nullable=True))


def downgrade():
    op.drop_column({py_table(table)}, "{column}")
    postgresql.ENUM(name="{enum}").drop(op.get_bind(), checkfirst=True)'''


RULE = Rule(
    id="enum-type-not-created",
    title="column of a type no revision creates",
    lock="none",
    blocks="the upgrade itself on a fresh database: it fails",
    effect="none on an existing database; `type does not exist` on a new one",
    problem="""A column uses a type (typically an enum) that no revision of the history
creates: it exists on the developer's database (created by `metadata.create_all` or
by hand), so the revision works there and fails on every fresh install and in CI.
Alembic's autogenerate writes exactly this for `sa.Enum(..., create_type=False)` or
a type the models share; `umbau new --autogenerate` writes the type's creation.
Types of extensions are not checked once the history creates an extension.""",
    safe="""def upgrade():
    status = postgresql.ENUM("new", "paid", "shipped", name="order_status")
    status.create(op.get_bind(), checkfirst=True)
    op.add_column("orders", sa.Column("status", status, nullable=True))


def downgrade():
    op.drop_column("orders", "status")
    postgresql.ENUM(name="order_status").drop(op.get_bind(), checkfirst=True)""",
    check=check,
    nodes=TABLE_COLUMNS,
)
