"""Expand/contract: renames and type changes that both application versions survive.

During a rolling deploy the old and the new application version run at the same time,
against one schema. **Expand** (pre-deploy) adds the new column next to the old one, a
dual-write trigger that keeps them in sync whichever one a version writes, and fills
the rows written before the trigger existed with umbau's backfill engine (batched,
resumable, exactly once per row, verified). **Contract** (post-deploy, once the old
version is gone) refuses unless that backfill finished and verified and no row differs,
then drops the old column and the trigger in one short transaction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from alembic import op

from umbau.errors import OpsRefused, UsageError
from umbau.ops import _catalog as catalog
from umbau.ops._names import backfill_name, derived, ident, qualified, sync_name
from umbau.ops._runtime import Runtime
from umbau.postgres.quoting import QualifiedName


@dataclass(frozen=True)
class Expansion:
    """``target`` is kept equal to ``forward(source)`` while both columns exist.

    ``forward`` is SQL over the source column by its own name (None: the value
    itself). ``two_way``: writes to ``target`` flow back to ``source`` too (renames:
    the new version writes the new name); a type change is one way, both versions
    write the column by its old name.
    """

    table: QualifiedName
    source: str
    target: str
    target_type: str | None
    forward: str | None = None
    two_way: bool = True

    @property
    def sql_table(self) -> str:
        return qualified(self.table)

    @property
    def sync(self) -> str:
        return sync_name(self.table.name, self.source, self.target)

    @property
    def function(self) -> str:
        return qualified(QualifiedName(self.table.schema, self.sync))

    @property
    def backfill(self) -> str:
        return backfill_name(self.table.name, self.source, self.target)

    def value(self) -> str:
        """The target's value in a row (UPDATE/backfill context)."""
        return self.forward or ident(self.source)

    def value_of(self, row: str) -> str:
        """The target's value for a trigger's ``NEW`` row."""
        if self.forward is None:
            return f"{row}.{ident(self.source)}"
        src = ident(self.source)
        return f"(SELECT {self.forward} FROM (SELECT {row}.{src} AS {src}) AS umbau_row)"


def function_sql(e: Expansion) -> str:
    """The trigger function.

    Two-way (a rename): on INSERT the column left empty is filled from the other, and
    when both are given and disagree the new one wins; on UPDATE the column that
    changed wins, the new one when both did (a write that leaves target equal to
    forward(source) is the backfill's or a consistent double write: nothing flows
    back). One-way (a type change: no application writes the shadow column): the
    target is always forward(source).
    """
    s, t, fwd = f"NEW.{ident(e.source)}", f"NEW.{ident(e.target)}", e.value_of("NEW")
    if not e.two_way:
        body = f"""    {t} := {fwd};"""
    else:
        body = f"""    IF TG_OP = 'INSERT' THEN
        IF {t} IS NULL THEN
            {t} := {fwd};
        ELSIF {s} IS NULL OR {t} IS DISTINCT FROM {fwd} THEN
            {s} := {t};
        END IF;
    ELSIF {s} IS DISTINCT FROM OLD.{ident(e.source)}
          AND {t} IS NOT DISTINCT FROM OLD.{ident(e.target)} THEN
        {t} := {fwd};  -- the old application version wrote the old column
    ELSIF {t} IS DISTINCT FROM OLD.{ident(e.target)} AND {t} IS DISTINCT FROM {fwd} THEN
        {s} := {t};  -- the new application version wrote the new column
    END IF;"""
    return f"""CREATE OR REPLACE FUNCTION {e.function}() RETURNS trigger
LANGUAGE plpgsql AS $umbau$
BEGIN
{body}
    RETURN NEW;
END
$umbau$"""


def trigger_sql(e: Expansion) -> str:
    return (f"CREATE TRIGGER {ident(e.sync)} BEFORE INSERT OR UPDATE OF "
            f"{ident(e.source)}, {ident(e.target)} ON {e.sql_table} "
            f"FOR EACH ROW EXECUTE FUNCTION {e.function}()")


def backfill_of(e: Expansion) -> Any:
    """The :class:`umbau.backfill.Backfill` that fills ``target`` in the existing rows."""
    from umbau.backfill import Backfill

    value = e.value()
    return Backfill(name=e.backfill, table=str(e.table), set={e.target: value},
                    where=f"{ident(e.target)} IS DISTINCT FROM ({value})",
                    verify=f"{ident(e.target)} IS NOT DISTINCT FROM ({value})")


# -- expand -------------------------------------------------------------------------


def expand(rt: Runtime, e: Expansion, *, run_backfill: bool = True) -> None:
    """Add the target column and the trigger, then run (or leave) the backfill."""
    added = _add_target(rt, e)
    rt.execute(function_sql(e))
    if rt.offline or not catalog.has_trigger(rt, e.sql_table, e.sync):
        rt.locking(trigger_sql(e))
    if run_backfill:
        # A new column starts the backfill afresh (a state left by an earlier upgrade that
        # was downgraded would claim "done"); an existing one resumes an interrupted run.
        _run_backfill(rt, e, restart=added)
    else:
        rt.comment(f"backfill {e.backfill} is left to `umbau backfill run`")


def reexpand(rt: Runtime, forward: Expansion, back: Expansion) -> None:
    """The downgrade of a contract: the column the contract dropped (``back.target``)
    comes back, filled by a backfill from the other one, with ``forward``'s trigger
    exactly as the expand made it."""
    added = _add_target(rt, back)
    rt.execute(function_sql(forward))
    if rt.offline or not catalog.has_trigger(rt, forward.sql_table, forward.sync):
        rt.locking(trigger_sql(forward))
    _run_backfill(rt, back, restart=added)


def _add_target(rt: Runtime, e: Expansion) -> bool:
    """Add the target column; False when an earlier run added it."""
    type_ = e.target_type
    if not rt.offline:
        if catalog.column(rt, e.sql_table, e.target) is not None:
            return False
        source = catalog.column(rt, e.sql_table, e.source)
        if source is None:
            raise UsageError(f"{e.sql_table} has no column {e.source}: check the names")
        type_ = type_ or source.type
    if type_ is None:
        raise UsageError(f"the type of {e.table}.{e.target} is needed to render SQL offline: "
                         "pass type_= (e.g. sa.Text())")
    rt.locking(f"ALTER TABLE {e.sql_table} ADD COLUMN {ident(e.target)} {type_}")
    return True


def _run_backfill(rt: Runtime, e: Expansion, *, restart: bool) -> None:
    if rt.offline:
        rt.comment(f"backfill {e.backfill} runs here in batches, outside the transaction: "
                   f"SET {e.target} = {e.value()}")
        return
    from umbau.backfill import run_backfill

    with rt.autocommit():
        driver = rt.op.get_bind().connection.driver_connection
        run_backfill(rt.settings, backfill_of(e), connection=driver, restart=restart)


# -- contract -----------------------------------------------------------------------


def contract(rt: Runtime, e: Expansion) -> bool:
    """Refuse unless the backfill is done and verified and no row differs; then drop the
    trigger, its function and the source column. False when an earlier run did it all."""
    if rt.offline:
        rt.comment(f"refuses unless backfill {e.backfill} is done and verified and every "
                   f"{e.target} equals {e.value()}")
    elif catalog.column(rt, e.sql_table, e.source) is None:
        return False
    else:
        require_backfill(rt, e)
    rt.locking(f"DROP TRIGGER IF EXISTS {ident(e.sync)} ON {e.sql_table}")
    rt.execute(f"DROP FUNCTION IF EXISTS {e.function}()")
    rt.locking(lambda: op.drop_column(e.table.name, e.source, schema=e.table.schema))
    return True


def require_backfill(rt: Runtime, e: Expansion) -> None:
    """OpsRefused unless the backfill finished, verified, and every row still agrees."""
    from umbau.backfill import state

    what = f"contract of {e.table}.{e.source} refused"
    conn = rt.op.get_bind().connection.driver_connection
    found = state.load(conn, e.backfill) if catalog.table_exists(
        rt, "umbau_backfills") else None
    if found is None:
        raise OpsRefused(f"{what}: backfill {e.backfill} never ran: run the expand revision "
                         "(or `umbau backfill run` of ops.rename_backfill/type_backfill) first")
    if found.status != "done":
        raise OpsRefused(f"{what}: backfill {e.backfill} is {found.status} "
                         f"({found.rows_done}/{found.rows_total} rows): finish it with "
                         f"`umbau backfill resume {e.backfill}` and upgrade again")
    differing = rt.scalar(f"SELECT count(*) FROM {e.sql_table} WHERE {ident(e.target)} "
                          f"IS DISTINCT FROM ({e.value()})")
    if differing:
        raise OpsRefused(f"{what}: {differing} row(s) of {e.table} have a {e.target} that is "
                         f"not {e.value()} (was the trigger {e.sync} disabled?): fix them, "
                         "then upgrade again")


def revert_expand(rt: Runtime, e: Expansion) -> None:
    """The downgrade of an expand: trigger, function and target column go."""
    rt.locking(f"DROP TRIGGER IF EXISTS {ident(e.sync)} ON {e.sql_table}")
    rt.execute(f"DROP FUNCTION IF EXISTS {e.function}()")
    rt.locking(f"ALTER TABLE {e.sql_table} DROP COLUMN IF EXISTS {ident(e.target)}")


# -- indexes of a column whose type changes ------------------------------------------


def copy_indexes(rt: Runtime, e: Expansion, names: list[str] | None = None) -> None:
    """Build, concurrently, a copy on the target column of each index on the source
    column, named ``<index>_umbau_new``; the contract renames them back. With
    ``names`` (a contract's downgrade): build the index ``name`` on the target from
    ``<name>_umbau_new`` on the source instead."""
    if rt.offline:
        rt.comment(f"each index on {e.table}.{e.source} is built again on {e.target}, "
                   "concurrently")
        return
    from umbau.ops.indexes import _build

    pairs = [(n, derived(n, "umbau_new")) for n, _ in indexes_on(rt, e)] if names is None \
        else [(derived(n, "umbau_new"), n) for n in names]
    for name, copy in pairs:
        definition = rt.scalar("SELECT pg_get_indexdef(to_regclass(%s))",
                               (qualified(QualifiedName(e.table.schema, name)),))
        if definition is None:
            continue
        sql = _retarget(definition, name, copy, e.source, e.target)
        sql = sql.replace("CREATE INDEX", "CREATE INDEX CONCURRENTLY IF NOT EXISTS", 1).replace(
            "CREATE UNIQUE INDEX", "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS", 1)
        with rt.autocommit():
            _build(rt, qualified(QualifiedName(e.table.schema, copy)),
                   lambda sql=sql: rt.execute(sql))


def rename_index_copies(rt: Runtime, e: Expansion, names: list[str]) -> None:
    for name in names:
        copy = qualified(QualifiedName(e.table.schema, derived(name, "umbau_new")))
        if catalog.index_valid(rt, copy) is not None:
            rt.locking(f"ALTER INDEX {copy} RENAME TO {ident(name)}")


def indexes_on(rt: Runtime, e: Expansion) -> list[tuple[str, str]]:
    """(name, definition) of the indexes that use the source column (not constraints')."""
    return [(r[0], r[1]) for r in rt.rows(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indexrelid "
        "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attname = %s "
        "WHERE i.indrelid = to_regclass(%s) AND c.relname NOT LIKE '%%umbau_new' "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid) "
        "AND (a.attnum = ANY (i.indkey) OR pg_get_indexdef(i.indexrelid) ~ "
        "('\\m' || a.attname || '\\M')) ORDER BY 1", (e.source, e.sql_table))]


def _retarget(definition: str, name: str, copy: str, source: str, target: str) -> str:
    """``pg_get_indexdef`` text with the index's name and the column's replaced."""
    head, on, tail = definition.partition(" ON ")
    head = head.replace(ident(name), ident(copy), 1)
    pattern = rf'(?<![\w"]){re.escape(ident(source))}(?![\w"])'
    return head + on + re.sub(pattern, ident(target), tail)
