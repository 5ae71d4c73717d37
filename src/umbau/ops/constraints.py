"""Constraints added without scanning the table under a lock that blocks writes.

``ADD CONSTRAINT … NOT VALID`` only changes the catalog (new and changed rows are
checked from then on); ``VALIDATE CONSTRAINT`` then scans the existing rows under a
SHARE UPDATE EXCLUSIVE lock, which lets reads and writes go on (PostgreSQL docs,
"ALTER TABLE", Notes). The two must not share a transaction, or the first statement's
ACCESS EXCLUSIVE lock would be held through the scan: the VALIDATE runs in an
autocommit block of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from alembic import op

from umbau.errors import UsageError
from umbau.ops import _catalog as catalog
from umbau.ops._names import derived, ident, parse_table, qualified
from umbau.ops._runtime import Runtime


def add_foreign_key(constraint_name: str, source_table: str, referent_table: str,
                    local_cols: Sequence[str], remote_cols: Sequence[str], *,
                    source_schema: str | None = None, referent_schema: str | None = None,
                    **kw: Any) -> None:
    """Alembic's ``op.create_foreign_key`` arguments; added NOT VALID, then validated in
    a transaction of its own. A rerun skips what an earlier run finished."""
    rt = Runtime(op)
    source = parse_table(source_table, source_schema)
    referent = parse_table(referent_table, referent_schema)
    table = qualified(source)
    state = _state(rt, table, constraint_name)
    if state is None:
        rt.locking(lambda: op.create_foreign_key(
            constraint_name, source.name, referent.name, list(local_cols), list(remote_cols),
            source_schema=source.schema, referent_schema=referent.schema,
            postgresql_not_valid=True, **kw))
    if state is not True:
        validate(table, constraint_name)


def add_check(constraint_name: str, table_name: str, condition: Any, *,
              schema: str | None = None, **kw: Any) -> None:
    """Alembic's ``op.create_check_constraint`` arguments; NOT VALID, then validated in
    a transaction of its own. A rerun skips what an earlier run finished."""
    rt = Runtime(op)
    parsed = parse_table(table_name, schema)
    table = qualified(parsed)
    state = _state(rt, table, constraint_name)
    if state is None:
        rt.locking(lambda: op.create_check_constraint(
            constraint_name, parsed.name, condition, schema=parsed.schema,
            postgresql_not_valid=True, **kw))
    if state is not True:
        validate(table, constraint_name)


def validate(table: str, constraint_name: str) -> None:
    """``ALTER TABLE … VALIDATE CONSTRAINT`` in an autocommit block (its own transaction).

    ``table`` is SQL text as it goes into the statement (quoted where needed)."""
    rt = Runtime(op)
    with rt.autocommit():
        rt.locking(f"ALTER TABLE {table} VALIDATE CONSTRAINT {ident(constraint_name)}")


def _state(rt: Runtime, table: str, name: str) -> bool | None:
    """None: absent (or offline); False: NOT VALID; True: validated."""
    return None if rt.offline else catalog.constraint_validated(rt, table, name)


def set_not_null(table_name: str, column_name: str, *, schema: str | None = None,
                 check_name: str | None = None) -> None:
    """``SET NOT NULL`` without a scan under ACCESS EXCLUSIVE.

    ``CHECK (col IS NOT NULL) NOT VALID``, VALIDATE it (no write blocked), then
    ``SET NOT NULL``, which PostgreSQL 12+ proves from the validated check without a
    scan (PostgreSQL docs, "ALTER TABLE", SET/DROP NOT NULL), then drop the check. A
    column that is NOT NULL already is left alone. Raises UsageError for an unknown
    column.
    """
    rt = Runtime(op)
    parsed = parse_table(table_name, schema)
    table = qualified(parsed)
    if not rt.offline:
        info = catalog.column(rt, table, column_name)
        if info is None:
            raise UsageError(f"{table} has no column {column_name}: check the names given "
                             "to ops.set_not_null")
        if info.not_null:
            return
    name = check_name or derived(parsed.name, column_name, "not_null")
    add_check(name, table_name, f"{ident(column_name)} IS NOT NULL", schema=schema)
    rt.locking(lambda: op.alter_column(parsed.name, column_name, nullable=False,
                                       schema=parsed.schema))
    rt.locking(lambda: op.drop_constraint(name, parsed.name, type_="check",
                                          schema=parsed.schema))
