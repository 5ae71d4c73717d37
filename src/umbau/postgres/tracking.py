"""What a step changed, so that ``umbau test`` reads only that (linear time).

Two event triggers record the relations each DDL command touches (``ddl_command_end``:
the table an index, constraint, trigger, default or policy belongs to; ``sql_drop``:
dropped objects by name) into the table ``umbau_ddl_log``; :meth:`Tracker.observe`
reads and empties it, and patches the previous snapshot with a partial one of just
those tables (:meth:`Snapshot.patch`). Rows written by a step are known from
``pg_stat_xact_user_tables`` (the counters of the current transaction).

Creating event triggers needs a superuser (PostgreSQL docs, CREATE EVENT TRIGGER);
where that is refused, :func:`install` returns False and callers take full snapshots.
Anything the triggers cannot place (an unknown kind of object) makes the next
observation a full snapshot, never a wrong one.
"""

from __future__ import annotations

from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.engine import Connection

from umbau.postgres import snapshot as snap

LOG_TABLE = "umbau_ddl_log"
FUNCTIONS = ("umbau_note_ddl", "umbau_note_drop")
EXCLUDED = frozenset({LOG_TABLE, *FUNCTIONS})

# For a created or altered object: the relation(s) it belongs to ('rel'), 'code' for
# types, functions, schemas and extensions, 'all' for anything else.
_INSTALL = r"""
CREATE TABLE umbau_ddl_log (kind text NOT NULL, schema_name text, object_name text,
                            rel oid);

CREATE FUNCTION umbau_note_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO umbau_ddl_log (kind, schema_name, object_name, rel)
    SELECT CASE WHEN rel.oid IS NOT NULL THEN 'rel'
                WHEN c.classid IN ('pg_proc'::regclass, 'pg_type'::regclass,
                                   'pg_namespace'::regclass, 'pg_extension'::regclass,
                                   'pg_constraint'::regclass) THEN 'code'
                WHEN c.classid = 'pg_class'::regclass THEN 'none'
                ELSE 'all' END,
           n.nspname, rel.relname, rel.oid
    FROM pg_event_trigger_ddl_commands() c
    LEFT JOIN LATERAL (
        SELECT c.objid AS oid WHERE c.classid = 'pg_class'::regclass
        UNION
        SELECT CASE c.classid
            WHEN 'pg_class'::regclass THEN coalesce(
                (SELECT i.indrelid FROM pg_index i WHERE i.indexrelid = c.objid),
                (SELECT d.refobjid FROM pg_depend d
                 WHERE d.classid = 'pg_class'::regclass AND d.objid = c.objid
                   AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
                 LIMIT 1))
            WHEN 'pg_constraint'::regclass THEN
                (SELECT nullif(k.conrelid, 0) FROM pg_constraint k WHERE k.oid = c.objid)
            WHEN 'pg_trigger'::regclass THEN
                (SELECT t.tgrelid FROM pg_trigger t WHERE t.oid = c.objid)
            WHEN 'pg_attrdef'::regclass THEN
                (SELECT a.adrelid FROM pg_attrdef a WHERE a.oid = c.objid)
            WHEN 'pg_policy'::regclass THEN
                (SELECT p.polrelid FROM pg_policy p WHERE p.oid = c.objid)
            WHEN 'pg_rewrite'::regclass THEN
                (SELECT r.ev_class FROM pg_rewrite r WHERE r.oid = c.objid)
            END
    ) owner ON owner.oid IS NOT NULL
    LEFT JOIN pg_class rel ON rel.oid = owner.oid
    LEFT JOIN pg_namespace n ON n.oid = rel.relnamespace;
END $$;

CREATE FUNCTION umbau_note_drop() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO umbau_ddl_log (kind, schema_name, object_name)
    SELECT CASE
             WHEN object_type IN ('table', 'view', 'materialized view', 'sequence',
                                  'foreign table', 'index', 'table column',
                                  'table constraint', 'trigger', 'policy', 'default value',
                                  'rule', 'toast table') THEN 'rel'
             WHEN object_type IN ('function', 'procedure', 'aggregate', 'type',
                                  'domain constraint', 'schema', 'extension') THEN 'code'
             ELSE 'all' END,
           address_names[1], address_names[2]
    FROM pg_event_trigger_dropped_objects()
    -- a table's row and array types go with it: not a change of the code group
    WHERE NOT (object_type = 'type' AND NOT original);
END $$;

CREATE EVENT TRIGGER umbau_note_ddl ON ddl_command_end EXECUTE FUNCTION umbau_note_ddl();
CREATE EVENT TRIGGER umbau_note_drop ON sql_drop EXECUTE FUNCTION umbau_note_drop();
"""


def install(conn: Connection) -> bool:
    """Create the log table and the event triggers (committed); False, with nothing
    created, when the server refuses (no superuser)."""
    try:
        conn.exec_driver_sql(_INSTALL)
        conn.commit()
    except sa_exc.DBAPIError:
        conn.rollback()
        return False
    return True


def written_tables(conn: Connection, schema: snap.Snapshot) -> set[str]:
    """Display names of the tables of ``schema`` the current transaction inserted into,
    updated or deleted from (PostgreSQL's pg_stat_get_xact_* counters; TRUNCATE is not
    counted). One lookup per table, no catalog scan."""
    oids = [oid for oid, group in schema.oids.items() if group in schema.tables]
    rows = conn.execute(text(
        "SELECT o FROM unnest(CAST(:oids AS oid[])) o "
        "WHERE pg_stat_get_xact_tuples_inserted(o) + pg_stat_get_xact_tuples_updated(o) "
        "+ pg_stat_get_xact_tuples_deleted(o) > 0"), {"oids": oids})
    return {schema.oids[o] for (o,) in rows}


class Tracker:
    """Keeps a snapshot current by reading only the groups the log names."""

    def __init__(self, excluded: set[str]) -> None:
        self.excluded = excluded

    def observe(self, conn: Connection, previous: snap.Snapshot
                ) -> tuple[snap.Snapshot, set[str] | None]:
        """The snapshot now, and the groups that may differ from ``previous`` (None:
        any, after a full snapshot). Empties the log."""
        rows = conn.execute(text(f"DELETE FROM {LOG_TABLE} "
                                 "RETURNING kind, schema_name, object_name, rel")).all()
        if any(kind == "all" for kind, _, _, _ in rows):
            return snap.take(conn, self.excluded), None
        names = {snap.display_name(s, n): snap.sql_name(s, n)
                 for kind, s, n, _ in rows if kind == "rel" and s and n}
        code = any(kind == "code" for kind, _, _, _ in rows)
        if not names and not code:
            return previous, set()
        # By oid too: a renamed relation is logged under its new name only.
        touched = {previous.group_of(name) for name in names} | {
            previous.oids[oid] for _, _, _, oid in rows if oid in previous.oids}
        if code:  # a changed enum changes the shape of the tables that use it
            touched |= {t for t, shape in previous.tables.items()
                        if any(c.category == "E" for c in shape.columns)}
        only = {previous.sql_names[g] for g in touched if g in previous.sql_names}
        part = snap.take(conn, self.excluded, only=only | set(names.values()), code=code)
        touched |= {part.group_of(name) for name in names} | (set(part.groups) - {snap.CODE})
        return previous.patch(part, touched, code), touched | ({snap.CODE} if code else set())
