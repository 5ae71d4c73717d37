"""Columns: added without a rewrite, renamed and retyped by expand/contract."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateColumn

from umbau.errors import OpsRefused, UsageError
from umbau.ops import _catalog as catalog
from umbau.ops import expand as ec
from umbau.ops._names import derived, ident, parse_table, qualified, shadow_column
from umbau.ops._runtime import Runtime
from umbau.postgres.quoting import QualifiedName

_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]
# Type changes that never rewrite (PostgreSQL docs, "ALTER TABLE", Notes: binary
# coercible, and a length/precision limit that is raised or removed). Offline only:
# online the server itself is asked (see _rewrites_type).
_WIDER = ("character varying", "varchar", "text", "numeric", "decimal")


def sql_type(type_: Any) -> str:
    """A SQLAlchemy type (or SQL text) as PostgreSQL type text: ``NUMERIC(5, 4)``."""
    if isinstance(type_, str):
        return type_
    instance = type_() if isinstance(type_, type) else type_
    return str(instance.compile(dialect=_DIALECT))


# -- add_column ---------------------------------------------------------------------


def add_column(table_name: str, column: sa.Column[Any], *, schema: str | None = None) -> None:
    """``op.add_column``, refused when it would rewrite a table that has rows.

    A constant default costs nothing from PostgreSQL 11 on (the value is kept in
    ``pg_attribute.attmissingval``); a volatile one (``gen_random_uuid()``,
    ``clock_timestamp()``), an identity or a stored generated column rewrites the whole
    table under ACCESS EXCLUSIVE (PostgreSQL docs, "ALTER TABLE", Notes). The server
    decides: the column is added to an empty ``CREATE UNLOGGED TABLE … AS … WHERE
    false`` copy inside a savepoint that is rolled back, and ``atthasmissing`` read.
    Raises OpsRefused with the alternative (add it nullable, backfill, then set the
    default). A column that exists already is left alone (a rerun).
    """
    rt = Runtime(op)
    parsed = parse_table(table_name, schema)
    table = qualified(parsed)
    if not rt.offline:
        if catalog.column(rt, table, column.name) is not None:
            return
        if _has_fill(column) and _rewrites_add(rt, parsed, column) and \
                catalog.has_rows(rt, table):
            raise OpsRefused(_refusal(parsed, column))
    rt.locking(lambda: op.add_column(parsed.name, column, schema=parsed.schema))


def _has_fill(column: sa.Column[Any]) -> bool:
    return any(x is not None for x in (column.server_default, column.computed,
                                       column.identity))


def _rewrites_add(rt: Runtime, table: QualifiedName, column: sa.Column[Any]) -> bool:
    ddl = str(CreateColumn(column).compile(dialect=_DIALECT))
    with _probe(rt, table) as probe:
        rt.op.get_bind().exec_driver_sql(f"ALTER TABLE {probe} ADD COLUMN {ddl}")
        missing = rt.scalar("SELECT atthasmissing FROM pg_attribute WHERE attrelid = "
                            "to_regclass(%s) AND attname = %s", (probe, column.name))
    default = column.server_default
    return not missing and (default is not None or column.computed is not None
                            or column.identity is not None)


def _refusal(table: QualifiedName, column: sa.Column[Any]) -> str:
    return (f"adding {table}.{column.name} as `{CreateColumn(column).compile(dialect=_DIALECT)}` "
            f"rewrites {table} under an ACCESS EXCLUSIVE lock (the default is not a "
            "constant): add it nullable without the default, fill it with `umbau backfill`, "
            "then set the default with op.alter_column(server_default=...)")


@contextmanager
def _probe(rt: Runtime, table: QualifiedName) -> Iterator[str]:
    """An empty unlogged copy of the table inside a savepoint that is rolled back."""
    name = qualified(QualifiedName(table.schema, derived("umbau_probe", table.name)))
    bind = rt.op.get_bind()
    savepoint = bind.begin_nested()
    try:
        bind.exec_driver_sql(f"CREATE UNLOGGED TABLE {name} AS SELECT * FROM "
                             f"{qualified(table)} WHERE false")
        yield name
    finally:
        savepoint.rollback()


# -- change_type --------------------------------------------------------------------


def change_type(table_name: str, column_name: str, type_: Any, *, using: str | None = None,
                existing_type: Any = None, schema: str | None = None,
                backfill: str = "run") -> None:
    """Change a column's type without a rewrite under ACCESS EXCLUSIVE.

    A plain ``ALTER COLUMN … TYPE`` when the server needs no rewrite for it (varchar
    widened, varchar to text, numeric precision raised: online the change is tried on
    an empty unlogged copy and ``relfilenode`` compared; offline a fixed list decides).
    Otherwise the expand step of expand/contract: a shadow column of the new type kept
    equal to ``using`` (SQL over the column, default a cast) by a trigger, its indexes
    built again concurrently, and a backfill; :func:`contract_change_type` (a post-deploy
    revision) swaps the columns. ``backfill="defer"`` leaves the backfill to
    ``umbau backfill run`` (see :func:`type_backfill`).
    """
    rt = Runtime(op)
    parsed = parse_table(table_name, schema)
    new_type = sql_type(type_)
    if _plain_change(rt, parsed, column_name, new_type, using, existing_type):
        rt.locking(_alter_type_sql(parsed, column_name, new_type, using))
        return
    e = _type_expansion(parsed, column_name, new_type, using)
    ec.expand(rt, e, run_backfill=_backfill_mode(backfill))
    ec.copy_indexes(rt, e)


def _plain_change(rt: Runtime, table: QualifiedName, column: str, new_type: str,
                  using: str | None, existing_type: Any) -> bool:
    if rt.offline:
        return existing_type is not None and using is None and \
            _widens(sql_type(existing_type), new_type)
    shadow = catalog.column(rt, qualified(table), shadow_column(column))
    if shadow is not None:
        return False  # an expand that an earlier run started
    if catalog.column(rt, qualified(table), column) is None:
        raise UsageError(f"{table} has no column {column}: check the names")
    return not _rewrites_type(rt, table, column, new_type, using)


def _widens(old: str, new: str) -> bool:
    """Offline guess: same base type (or varchar to text) with a limit raised or gone."""
    old_base, old_mods = _split_type(old)
    new_base, new_mods = _split_type(new)
    if old_base in ("varchar", "character varying") and new_base == "text":
        return True
    if old_base != new_base or old_base not in _WIDER:
        return False
    if not new_mods:
        return True
    if not old_mods or len(old_mods) != len(new_mods):
        return False
    same_scale = old_mods[1:] == new_mods[1:]
    return same_scale and new_mods[0] >= old_mods[0]


def _split_type(text: str) -> tuple[str, tuple[int, ...]]:
    base, _, mods = text.lower().partition("(")
    numbers = tuple(int(m) for m in mods.rstrip(")").split(",") if m.strip().isdigit())
    return base.strip(), numbers


def _rewrites_type(rt: Runtime, table: QualifiedName, column: str, new_type: str,
                   using: str | None) -> bool:
    """Whether ALTER TYPE rewrites the table: tried on an empty unlogged copy."""
    relfilenode = "SELECT pg_relation_filenode(to_regclass(%s))"
    with _probe(rt, table) as probe:
        before = rt.scalar(relfilenode, (probe,))
        rt.op.get_bind().exec_driver_sql(
            f"ALTER TABLE {probe} ALTER COLUMN {ident(column)} TYPE {new_type}"
            + (f" USING {using}" if using else ""))
        after = rt.scalar(relfilenode, (probe,))
    return bool(before != after)


def _type_expansion(table: QualifiedName, column: str, new_type: str,
                    using: str | None) -> ec.Expansion:
    forward = using or f"CAST({ident(column)} AS {new_type})"
    return ec.Expansion(table, column, shadow_column(column), new_type, forward,
                        two_way=False)


def _backfill_mode(backfill: str) -> bool:
    if backfill not in ("run", "defer"):
        raise UsageError(f"backfill={backfill!r}: use 'run' (in the revision) or 'defer' "
                         "(`umbau backfill run` later)")
    return backfill == "run"


def contract_change_type(table_name: str, column_name: str, type_: Any, *,
                         using: str | None = None, schema: str | None = None) -> None:
    """The contract of :func:`change_type`: refuse unless its backfill finished and
    verified and every row agrees; then drop the old column and the trigger, rename the
    shadow column (and its index copies) to the old names, and give it the old column's
    default and NOT NULL. Nothing to do when the change was a plain ALTER."""
    rt = Runtime(op)
    parsed = parse_table(table_name, schema)
    e = _type_expansion(parsed, column_name, sql_type(type_), using)
    table = qualified(parsed)
    if not rt.offline and catalog.column(rt, table, e.target) is None:
        return  # a plain ALTER did it, or an earlier run swapped the columns
    keep = None if rt.offline else _column_extras(rt, e)
    if not ec.contract(rt, e):
        return
    rt.locking(lambda: op.alter_column(parsed.name, e.target, new_column_name=column_name,
                                       schema=parsed.schema))
    if keep is not None:
        _restore_extras(rt, e, keep)


@dataclass(frozen=True)
class _Extras:
    """What the old column had that the shadow column lacks, to carry over."""

    default: str | None
    not_null: bool
    comment: str | None
    indexes: list[str]


def _column_extras(rt: Runtime, e: ec.Expansion) -> _Extras:
    found = rt.rows(
        "SELECT pg_get_expr(d.adbin, d.adrelid), a.attnotnull, "
        "col_description(a.attrelid, a.attnum) FROM pg_attribute a "
        "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
        "WHERE a.attrelid = to_regclass(%s) AND a.attname = %s", (e.sql_table, e.source))
    default, not_null, comment = found[0] if found else (None, False, None)
    return _Extras(default, bool(not_null), comment, [n for n, _ in ec.indexes_on(rt, e)])


def _restore_extras(rt: Runtime, e: ec.Expansion, keep: _Extras, *,
                    column_name: str | None = None, indexes: bool = True) -> None:
    """Give ``column_name`` (default: ``e.source``) the default, comment and NOT NULL
    of ``keep``; with ``indexes``, rename the expand's index copies to the old names."""
    name = column_name or e.source
    column = ident(name)
    if keep.default is not None:
        rt.locking(f"ALTER TABLE {e.sql_table} ALTER COLUMN {column} SET DEFAULT "
                   f"{keep.default}")
    if keep.comment is not None:
        text = keep.comment.replace("'", "''")
        rt.execute(f"COMMENT ON COLUMN {e.sql_table}.{column} IS '{text}'")
    if indexes:
        ec.rename_index_copies(rt, e, keep.indexes)
    if keep.not_null:
        from umbau.ops.constraints import set_not_null

        set_not_null(e.table.name, name, schema=e.table.schema)


def revert_change_type(table_name: str, column_name: str, existing_type: Any, *,
                       using: str | None = None, schema: str | None = None) -> None:
    """The downgrade of :func:`change_type`: drop the shadow column and the trigger of an
    expand; after a plain ALTER, ALTER the type back to ``existing_type``."""
    rt = Runtime(op)
    parsed = parse_table(table_name, schema)
    e = _type_expansion(parsed, column_name, "unused", None)
    # Offline the expand's downgrade is shown: which way the upgrade went is not known.
    if rt.offline or catalog.column(rt, e.sql_table, e.target) is not None:
        ec.revert_expand(rt, e)
        return
    _alter_back(rt, parsed, column_name, existing_type, using)


def revert_contract_change_type(table_name: str, column_name: str, type_: Any,
                                existing_type: Any, *, using: str | None = None,
                                schema: str | None = None) -> None:
    """The downgrade of :func:`contract_change_type`: back to the expanded state. The
    column (of ``type_``) becomes the shadow column again, the old column
    (``existing_type``) comes back filled by a backfill, with the expand's trigger
    (``using`` as given to :func:`change_type`) and its indexes built concurrently."""
    rt = Runtime(op)
    parsed = parse_table(table_name, schema)
    e = _type_expansion(parsed, column_name, sql_type(type_), using)
    old = sql_type(existing_type)
    if not rt.offline and catalog.column(rt, e.sql_table, e.target) is not None:
        return  # an earlier run did it
    keep = None if rt.offline else _column_extras(rt, e)
    rt.locking(lambda: op.alter_column(parsed.name, column_name, new_column_name=e.target,
                                       schema=parsed.schema))
    for name in keep.indexes if keep else ():
        rt.locking(f"ALTER INDEX {qualified(QualifiedName(parsed.schema, name))} RENAME TO "
                   f"{ident(derived(name, 'umbau_new'))}")
    back = ec.Expansion(parsed, e.target, column_name, old,
                        f"CAST({ident(e.target)} AS {old})", two_way=False)
    ec.reexpand(rt, e, back)
    if keep is not None and keep.comment is not None:
        text = keep.comment.replace("'", "''")
        rt.execute(f"COMMENT ON COLUMN {e.sql_table}.{ident(column_name)} IS '{text}'")
    ec.copy_indexes(rt, back, names=keep.indexes if keep else [])


def _alter_back(rt: Runtime, table: QualifiedName, column: str, existing_type: Any,
                using: str | None) -> None:
    old = sql_type(existing_type)
    rt.locking(_alter_type_sql(table, column, old, using or f"{ident(column)}::{old}"))


def _alter_type_sql(table: QualifiedName, column: str, type_: str, using: str | None) -> str:
    return (f"ALTER TABLE {qualified(table)} ALTER COLUMN {ident(column)} TYPE {type_}"
            + (f" USING {using}" if using else ""))


def type_backfill(table_name: str, column_name: str, type_: Any, *, using: str | None = None,
                  schema: str | None = None) -> Any:
    """The Backfill of ``change_type(..., backfill="defer")``, for ``umbau backfill run``."""
    e = _type_expansion(parse_table(table_name, schema), column_name, sql_type(type_), using)
    return ec.backfill_of(e)


# -- rename_column ------------------------------------------------------------------


def _rename_expansion(table_name: str, old: str, new: str, type_: Any,
                      schema: str | None) -> ec.Expansion:
    return ec.Expansion(parse_table(table_name, schema), old, new,
                        sql_type(type_) if type_ is not None else None)


def rename_column(table_name: str, old: str, new: str, *, type_: Any = None,
                  schema: str | None = None, backfill: str = "run") -> None:
    """The expand step of a rename: add ``new`` (``type_``, default: ``old``'s type; needed
    for ``--sql``), a trigger that keeps ``old`` and ``new`` equal whichever one is
    written (the old version writes ``old``, the new one ``new``), and a backfill of
    ``new`` (``backfill="defer"``: left to ``umbau backfill run``, see
    :func:`rename_backfill`). :func:`contract_rename_column` finishes it."""
    rt = Runtime(op)
    e = _rename_expansion(table_name, old, new, type_, schema)
    ec.expand(rt, e, run_backfill=_backfill_mode(backfill))
    # the contract drops ``old`` and its indexes: copies on ``new`` are built now,
    # concurrently, and take the original names then
    ec.copy_indexes(rt, e)


def contract_rename_column(table_name: str, old: str, new: str, *,
                           schema: str | None = None) -> None:
    """The contract of :func:`rename_column` (a post-deploy revision): refuses
    (OpsRefused) unless the backfill finished and verified and every row has
    ``new = old``; then drops the trigger and ``old``, and gives ``new`` what ``old`` had:
    its default, NOT NULL (through :func:`umbau.ops.set_not_null`, no scan under ACCESS
    EXCLUSIVE), comment, and its indexes (the copies the expand built take their names).
    Constraints on ``old`` (unique, check, foreign keys) are not carried over: add them on
    ``new`` in the expand revision (e.g. ``ops.add_foreign_key``)."""
    rt = Runtime(op)
    e = _rename_expansion(table_name, old, new, None, schema)
    keep = None if rt.offline else _column_extras(rt, e)
    if not ec.contract(rt, e):
        return  # an earlier run did it
    if keep is not None:
        _restore_extras(rt, e, keep, column_name=e.target)
    else:
        rt.comment(f"{new} takes {old}'s default, NOT NULL, comment and index names")


def revert_rename_column(table_name: str, old: str, new: str, *,
                         schema: str | None = None) -> None:
    """The downgrade of :func:`rename_column`: trigger and ``new`` go (the trigger has
    copied every write of ``new`` into ``old``)."""
    ec.revert_expand(Runtime(op), _rename_expansion(table_name, old, new, None, schema))


def revert_contract_rename_column(table_name: str, old: str, new: str, *, type_: Any = None,
                                  schema: str | None = None) -> None:
    """The downgrade of :func:`contract_rename_column`: the expand again, the other way
    round (``old`` comes back, filled from ``new`` by a backfill, with the trigger), and
    the expanded state's column attributes: ``old`` gets ``new``'s default, NOT NULL,
    comment and index names; ``new`` keeps copies of the indexes (``<index>_umbau_new``),
    no default (an old version's INSERT would send it, and the trigger would prefer it
    over the value written to ``old``) and may hold NULL."""
    rt = Runtime(op)
    forward = _rename_expansion(table_name, old, new, type_, schema)
    back = ec.Expansion(forward.table, new, old, forward.target_type)
    keep = None if rt.offline else _column_extras(rt, back)
    ec.reexpand(rt, forward, back)
    if keep is None:
        rt.comment(f"{old} takes {new}'s default, NOT NULL, comment and index names")
        return
    _restore_extras(rt, back, keep, column_name=old, indexes=False)
    table, column = forward.sql_table, ident(new)
    if keep.default is not None:
        rt.locking(f"ALTER TABLE {table} ALTER COLUMN {column} DROP DEFAULT")
    if keep.not_null:
        rt.locking(f"ALTER TABLE {table} ALTER COLUMN {column} DROP NOT NULL")
    if keep.comment is not None:
        rt.execute(f"COMMENT ON COLUMN {table}.{column} IS NULL")
    for name in keep.indexes:
        rt.locking(f"ALTER INDEX {qualified(QualifiedName(forward.table.schema, name))} "
                   f"RENAME TO {ident(derived(name, 'umbau_new'))}")
    ec.copy_indexes(rt, back, names=keep.indexes)


def rename_backfill(table_name: str, old: str, new: str, *, schema: str | None = None) -> Any:
    """The Backfill of ``rename_column(..., backfill="defer")``, for ``umbau backfill run``."""
    return ec.backfill_of(_rename_expansion(table_name, old, new, None, schema))


# -- rename_table -------------------------------------------------------------------


def rename_table(old: str, new: str, *, schema: str | None = None) -> None:
    """The expand step of a table rename: rename it, and leave a view under the old name.

    A single-table ``SELECT *`` view is automatically updatable (PostgreSQL docs,
    "CREATE VIEW", Updatable Views), so the old version keeps reading and writing
    through the old name while the new one uses the new name.
    :func:`contract_rename_table` drops the view.
    """
    rt = Runtime(op)
    before = parse_table(old, schema)
    after = QualifiedName(before.schema, parse_table(new).name)
    if rt.offline or not catalog.table_exists(rt, qualified(after)):
        rt.locking(lambda: op.rename_table(before.name, after.name, schema=before.schema))
    if rt.offline or not catalog.table_exists(rt, qualified(before)):
        rt.execute(f"CREATE VIEW {qualified(before)} AS SELECT * FROM {qualified(after)}")


def contract_rename_table(old: str, new: str, *, schema: str | None = None) -> None:
    """The contract of :func:`rename_table`: the view under the old name goes."""
    rt = Runtime(op)
    rt.locking(f"DROP VIEW IF EXISTS {qualified(parse_table(old, schema))}")


def revert_rename_table(old: str, new: str, *, schema: str | None = None) -> None:
    """The downgrade of :func:`rename_table`: view dropped, table renamed back."""
    rt = Runtime(op)
    before = parse_table(old, schema)
    rt.locking(f"DROP VIEW IF EXISTS {qualified(before)}")
    rt.locking(lambda: op.rename_table(parse_table(new).name, before.name, schema=before.schema))


def revert_contract_rename_table(old: str, new: str, *, schema: str | None = None) -> None:
    """The downgrade of :func:`contract_rename_table`: the view comes back."""
    before = parse_table(old, schema)
    after = QualifiedName(before.schema, parse_table(new).name)
    Runtime(op).execute(f"CREATE VIEW {qualified(before)} AS SELECT * FROM {qualified(after)}")
