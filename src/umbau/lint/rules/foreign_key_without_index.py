"""A foreign key whose referencing columns have no index (opt-in)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pglast import ast

from umbau.lint.context import CT, LintContext, Unit, column_constraints, relname
from umbau.lint.model import WARNING, Hit, Rule
from umbau.lint.rules._helpers import added_constraints, py_table


def foreign_keys(node: Any) -> Iterator[tuple[str, tuple[str, ...]]]:
    """(table, referencing columns) of every foreign key a statement adds."""
    if isinstance(node, ast.CreateStmt):
        table = relname(node.relation)
        for element in node.tableElts or ():
            if isinstance(element, ast.ColumnDef):
                for c in column_constraints(element):
                    if c.contype == CT.CONSTR_FOREIGN:
                        yield table, (str(element.colname),)
            elif isinstance(element, ast.Constraint) and element.contype == CT.CONSTR_FOREIGN:
                yield table, tuple(str(a.sval) for a in element.fk_attrs or ())
    for table, constraint in added_constraints(node):
        if constraint.contype == CT.CONSTR_FOREIGN:
            yield table, tuple(str(a.sval) for a in constraint.fk_attrs or ())


def check_unit(unit: Unit, ctx: LintContext) -> Iterator[Hit]:
    # at the end of the unit: the index is often created after the foreign key
    for stmt in unit.statements:
        for table, columns in foreign_keys(stmt.node) if stmt.node is not None else ():
            known = ctx.tables.get(table)
            indexed = known.indexed if known else []
            if columns and not any(ix[:len(columns)] == columns for ix in indexed):
                cols = ", ".join(columns)
                name = f"ix_{table.replace('.', '_')}_{'_'.join(columns)}"
                yield Hit(f"the foreign key on {table} ({cols}) has no index starting with those "
                          f"columns: every DELETE or key UPDATE on the referenced table scans "
                          f"{table}; add the index", table, line=stmt.line,
                          safe=_safe(table, columns, name))


def _safe(table: str, columns: tuple[str, ...], name: str) -> str:
    cols = ", ".join(f'"{c}"' for c in columns)
    return f'''def upgrade():
    with op.get_context().autocommit_block():
        op.create_index("{name}", {py_table(table)}, [{cols}],
                        postgresql_concurrently=True, if_not_exists=True)
    # or, with umbau's helpers: ops.create_index("{name}", "{table}", [{cols}])'''


RULE = Rule(
    id="foreign-key-without-index",
    title="foreign key without an index on its columns",
    lock="none now",
    blocks="later: deletes on the referenced table scan this one",
    effect="a sequential scan of the referencing table per deleted or re-keyed parent row",
    problem="""PostgreSQL indexes the referenced side of a foreign key (its primary key or
unique constraint), not the referencing columns. Without an index there, every
`DELETE` of a parent row, and every update of its key, scans the whole child table
to check for references — and `ON DELETE CASCADE` does the same to find the rows
to delete (PostgreSQL docs, "5.5.5. Foreign Keys").""",
    safe="""def upgrade():
    with op.get_context().autocommit_block():
        op.create_index("ix_invoices_order_id", "invoices", ["order_id"],
                        postgresql_concurrently=True, if_not_exists=True)""",
    check_unit=check_unit,
    severity=WARNING,
    opt_in=True,
)
