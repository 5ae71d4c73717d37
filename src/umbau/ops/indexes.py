"""Indexes built and dropped concurrently, and unique / primary-key constraints on them.

``CREATE INDEX CONCURRENTLY`` takes a SHARE UPDATE EXCLUSIVE lock: reads and writes go
on while it builds (PostgreSQL docs, "CREATE INDEX", "Building Indexes Concurrently").
It cannot run inside a transaction block, and a build that fails or is interrupted
leaves an INVALID index behind that ``IF NOT EXISTS`` would keep, so a rerun here drops
such a leftover first and checks ``pg_index.indisvalid`` after every build.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from umbau.errors import IndexBuildFailed
from umbau.ops import _catalog as catalog
from umbau.ops._names import parse_table, qualified
from umbau.ops._runtime import Runtime
from umbau.postgres.connect import RETRYABLE_SQLSTATES, sqlstate
from umbau.postgres.errors import describe_error
from umbau.postgres.quoting import QualifiedName
from umbau.retry import backoff_delay

# PostgreSQL checks for a vanished client this often while a build runs (PG 14+), so a
# killed migrator does not leave an orphaned build holding its lock until it ends.
CLIENT_CHECK = "1s"


def create_index(name: str, table: str, columns: Sequence[Any], *, unique: bool = False,
                 where: str | None = None, using: str | None = None,
                 schema: str | None = None, include: Sequence[str] | None = None) -> None:
    """``CREATE [UNIQUE] INDEX CONCURRENTLY IF NOT EXISTS`` in an autocommit block.

    ``columns``: column names, or expressions as SQL text (``"lower(email)"``). Online,
    an invalid index of the same name is dropped first, and after the build
    ``indisvalid`` is checked; a build that times out on a lock (its waits for running
    writers obey lock_timeout) or ends invalid is dropped and built again, at most
    ``retries`` times with backoff. Raises IndexBuildFailed when no valid index came of
    it, and re-raises any other build error (a duplicate key for a unique index) after
    dropping the invalid leftover, so the table is left as it was.
    """
    rt = Runtime(op)
    target = parse_table(table, schema)
    index = qualified(QualifiedName(target.schema, name))

    def build() -> None:
        op.create_index(name, target.name, list(columns), unique=unique, schema=target.schema,
                        postgresql_concurrently=True, if_not_exists=True,
                        postgresql_where=sa.text(where) if where else None,
                        postgresql_using=using, postgresql_include=list(include or ()))

    with rt.autocommit():
        if rt.offline:
            rt.comment(f"an invalid {index} left by an interrupted build is dropped first; "
                       "pg_index.indisvalid is checked afterwards")
            build()
            return
        _build(rt, index, build)


def _build(rt: Runtime, index: str, build: Any) -> None:
    _check_client(rt)
    attempt = 1
    while True:
        valid = catalog.index_valid(rt, index)
        if valid:
            return
        if valid is False:
            _drop(rt, index)
        reason = _try_build(rt, index, build)
        if reason is None:
            return
        if attempt > rt.settings.retries:
            _drop(rt, index)
            raise IndexBuildFailed(f"index {index} is still not valid after {attempt} builds "
                                   f"({reason}): find the blocking session in "
                                   "pg_stat_activity, or raise lock_timeout/retries", index)
        rt.sleep(backoff_delay(attempt, rt.settings))
        attempt += 1


def _try_build(rt: Runtime, index: str, build: Any) -> str | None:
    """None when a valid index stands; else why not (a lock timeout, an invalid build)."""
    rt.ensure_lock_timeout()
    try:
        build()
    except Exception as exc:
        if sqlstate(exc) not in RETRYABLE_SQLSTATES:
            if catalog.index_valid(rt, index) is False:
                _drop(rt, index)
            raise
        return describe_error(exc)
    return None if catalog.index_valid(rt, index) else "the build ended with an invalid index"


def _drop(rt: Runtime, index: str) -> None:
    rt.locking(f"DROP INDEX CONCURRENTLY IF EXISTS {index}")


def _check_client(rt: Runtime) -> None:
    if catalog.server_version(rt) >= 140000:
        rt.op.get_bind().exec_driver_sql(f"SET client_connection_check_interval = '{CLIENT_CHECK}'")


def drop_index(name: str, table: str | None = None, *, schema: str | None = None) -> None:
    """``DROP INDEX CONCURRENTLY IF EXISTS`` in an autocommit block, under lock_timeout
    with retries (it waits for the transactions using the index, without blocking them)."""
    rt = Runtime(op)
    with rt.autocommit():
        parsed = parse_table(table, schema) if table else None
        rt.locking(lambda: op.drop_index(
            name, table_name=parsed.name if parsed else None,
            schema=parsed.schema if parsed else schema,
            postgresql_concurrently=True, if_exists=True))


def add_unique(constraint_name: str, table_name: str, columns: Sequence[str], *,
               schema: str | None = None) -> None:
    """A unique constraint without blocking writes: a unique index built concurrently
    (:func:`create_index`), then ``ADD CONSTRAINT … UNIQUE USING INDEX`` (catalog only,
    a brief ACCESS EXCLUSIVE lock; PostgreSQL docs, "ALTER TABLE", table_constraint_using_index)."""
    create_index(constraint_name, table_name, columns, unique=True, schema=schema)
    _attach(Runtime(op), parse_table(table_name, schema), constraint_name, "UNIQUE")


def add_primary_key(constraint_name: str, table_name: str, columns: Sequence[str], *,
                    schema: str | None = None) -> None:
    """A primary key without blocking writes: each nullable key column gets
    :func:`~umbau.ops.set_not_null` first (else ADD PRIMARY KEY would scan the table
    under ACCESS EXCLUSIVE to set it), then a unique index built concurrently, then
    ``ADD CONSTRAINT … PRIMARY KEY USING INDEX``."""
    from umbau.ops.constraints import set_not_null

    for column in columns:
        set_not_null(table_name, column, schema=schema)
    create_index(constraint_name, table_name, columns, unique=True, schema=schema)
    _attach(Runtime(op), parse_table(table_name, schema), constraint_name, "PRIMARY KEY")


def _attach(rt: Runtime, table: QualifiedName, name: str, kind: str) -> None:
    target = qualified(table)
    if not rt.offline and catalog.constraint_validated(rt, target, name) is not None:
        return  # attached by an earlier run
    index = qualified(QualifiedName(None, name))
    rt.locking(f"ALTER TABLE {target} ADD CONSTRAINT {index} {kind} USING INDEX {index}")
