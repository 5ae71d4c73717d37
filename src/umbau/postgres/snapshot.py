"""Catalog snapshots: what a database's schema looks like, read from pg_catalog in one query.

``umbau test`` takes a snapshot before and after every step and compares them; a
difference reads like ``column orders.shop_id: type integer -> bigint`` (expected ->
found). Objects in the ``public`` schema are named without it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

_QUERY = r"""
WITH RECURSIVE wanted(oid) AS (  -- the relations asked for, and the views built on them
    SELECT to_regclass(x)::oid FROM unnest(CAST(:only AS text[])) x
    UNION
    SELECT r.ev_class FROM wanted w
    JOIN pg_depend d ON d.refclassid = 'pg_class'::regclass AND d.refobjid = w.oid
                    AND d.classid = 'pg_rewrite'::regclass
    JOIN pg_rewrite r ON r.oid = d.objid
),
ns AS MATERIALIZED (
    SELECT oid, nspname FROM pg_namespace
    WHERE nspname NOT IN ('pg_catalog', 'information_schema')
      AND nspname NOT LIKE 'pg\_toast%' AND nspname NOT LIKE 'pg\_temp%'
),
rels AS MATERIALIZED (
    SELECT c.oid, n.nspname, c.relname, c.relkind, c.relpersistence, c.relrowsecurity,
           c.relforcerowsecurity, pg_get_expr(c.relpartbound, c.oid) AS partbound,
           CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END AS partkey
    FROM pg_class c JOIN ns n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'f', 'v', 'm', 'S', 'i', 'I')
      AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_class'::regclass
                      AND e.objid = c.oid AND e.deptype = 'e')
      /*ONLY*/
)
SELECT json_build_object(
  'schemas', (SELECT coalesce(json_agg(nspname), '[]') FROM ns WHERE :code),
  'extensions', (SELECT coalesce(json_agg(json_build_array(extname, extversion)), '[]')
                 FROM pg_extension WHERE extname <> 'plpgsql' AND :code),
  'relations', (SELECT coalesce(json_agg(json_build_array(nspname, relname, relkind,
                    relpersistence = 'u', relrowsecurity, relforcerowsecurity, partbound,
                    partkey, oid::bigint)), '[]')
                FROM rels WHERE relkind IN ('r', 'p', 'f')),
  'columns', (SELECT coalesce(json_agg(json_build_array(
                  r.nspname, r.relname, a.attname, format_type(a.atttypid, a.atttypmod),
                  a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attidentity,
                  a.attgenerated, coalesce(bt.typcategory, t.typcategory),
                  CASE WHEN t.typtype = 'e' THEN
                    (SELECT json_agg(e.enumlabel ORDER BY e.enumsortorder)
                     FROM pg_enum e WHERE e.enumtypid = t.oid) END, a.attnum,
                  CASE WHEN a.attcollation <> t.typcollation THEN co.collname END)), '[]')
              FROM rels r
              JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0
                                  AND NOT a.attisdropped
              JOIN pg_type t ON t.oid = a.atttypid
              LEFT JOIN pg_type bt ON t.typtype = 'd' AND bt.oid = t.typbasetype
              LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
              LEFT JOIN pg_collation co ON co.oid = a.attcollation
              WHERE r.relkind IN ('r', 'p', 'f')),
  'constraints', (SELECT coalesce(json_agg(json_build_array(
                      r.nspname, r.relname, c.conname, c.contype, pg_get_constraintdef(c.oid),
                      (SELECT json_agg(a.attname ORDER BY k.i) FROM unnest(c.conkey)
                         WITH ORDINALITY k(n, i)
                         JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n),
                      (SELECT json_build_array(fn.nspname, fc.relname) FROM pg_class fc
                         JOIN pg_namespace fn ON fn.oid = fc.relnamespace
                         WHERE fc.oid = c.confrelid),
                      (SELECT json_agg(a.attname ORDER BY k.i) FROM unnest(c.confkey)
                         WITH ORDINALITY k(n, i)
                         JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n)
                  )), '[]')
                  FROM pg_constraint c JOIN rels r ON r.oid = c.conrelid),
  'indexes', (SELECT coalesce(json_agg(json_build_array(
                  t.nspname, t.relname, ic.relname, pg_get_indexdef(i.indexrelid), i.indisvalid
              )), '[]')
              FROM pg_index i JOIN rels t ON t.oid = i.indrelid
              JOIN pg_class ic ON ic.oid = i.indexrelid),
  'sequences', (SELECT coalesce(json_agg(json_build_array(
                    r.nspname, r.relname, format_type(s.seqtypid, NULL), s.seqstart,
                    s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle,
                    (SELECT json_build_array(on_.nspname, oc.relname, oa.attname)
                     FROM pg_depend d JOIN pg_class oc ON oc.oid = d.refobjid
                     JOIN pg_namespace on_ ON on_.oid = oc.relnamespace
                     JOIN pg_attribute oa ON oa.attrelid = d.refobjid
                                         AND oa.attnum = d.refobjsubid
                     WHERE d.classid = 'pg_class'::regclass AND d.objid = s.seqrelid
                       AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
                     LIMIT 1), s.seqrelid::bigint)), '[]')
                FROM pg_sequence s JOIN rels r ON r.oid = s.seqrelid),
  'enums', (SELECT coalesce(json_agg(json_build_array(n.nspname, t.typname,
                (SELECT json_agg(e.enumlabel ORDER BY e.enumsortorder)
                 FROM pg_enum e WHERE e.enumtypid = t.oid))), '[]')
            FROM pg_type t JOIN ns n ON n.oid = t.typnamespace
            WHERE t.typtype = 'e' AND :code),
  'domains', (SELECT coalesce(json_agg(json_build_array(n.nspname, t.typname,
                format_type(t.typbasetype, t.typtypmod), t.typnotnull, t.typdefault)), '[]')
              FROM pg_type t JOIN ns n ON n.oid = t.typnamespace
              WHERE t.typtype = 'd' AND :code),
  'domain_constraints', (SELECT coalesce(json_agg(json_build_array(n.nspname, t.typname,
                c.conname, pg_get_constraintdef(c.oid))), '[]')
              FROM pg_constraint c JOIN pg_type t ON t.oid = c.contypid
              JOIN ns n ON n.oid = t.typnamespace WHERE c.contype <> 'n' AND :code),
  'policies', (SELECT coalesce(json_agg(json_build_array(r.nspname, r.relname, p.polname,
                p.polcmd, p.polpermissive,
                ARRAY(SELECT CASE WHEN x = 0 THEN 'public' ELSE pg_get_userbyid(x)::text END
                      FROM unnest(p.polroles) x ORDER BY 1),
                pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid))),
                '[]')
              FROM pg_policy p JOIN rels r ON r.oid = p.polrelid),
  'views', (SELECT coalesce(json_agg(json_build_array(nspname, relname, relkind,
                pg_get_viewdef(oid), oid::bigint)), '[]')
            FROM rels WHERE relkind IN ('v', 'm')),
  'triggers', (SELECT coalesce(json_agg(json_build_array(r.nspname, r.relname, tg.tgname,
                   pg_get_triggerdef(tg.oid), tg.tgenabled)), '[]')
               FROM pg_trigger tg JOIN rels r ON r.oid = tg.tgrelid WHERE NOT tg.tgisinternal),
  'functions', (SELECT coalesce(json_agg(json_build_array(n.nspname, p.proname,
                    pg_get_function_identity_arguments(p.oid),
                    CASE WHEN p.prokind IN ('f', 'p') THEN pg_get_functiondef(p.oid)
                         ELSE p.prokind::text END)), '[]')
                FROM pg_proc p JOIN ns n ON n.oid = p.pronamespace
                WHERE :code AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.deptype = 'e'
                                  AND e.classid = 'pg_proc'::regclass AND e.objid = p.oid))
)::text
"""

# A partial read starts from the relations asked for (and what they own), so that the
# planner walks the catalogs' indexes instead of scanning them: linear time.
_PARTIAL = _QUERY.replace("/*ONLY*/", """AND c.oid IN (
          SELECT oid FROM wanted
          UNION
          SELECT d.objid FROM pg_depend d JOIN wanted w ON w.oid = d.refobjid
          WHERE d.refclassid = 'pg_class'::regclass AND d.classid = 'pg_class'::regclass
            AND d.deptype IN ('a', 'i'))""")


@dataclass(frozen=True)
class ColumnShape:
    """One column, with what a row generator needs to fill it."""

    name: str
    type: str
    nullable: bool
    default: str | None
    identity: str
    generated: str
    category: str  # pg_type.typcategory, of the base type for domains
    enum_labels: tuple[str, ...] = ()
    collation: str | None = None  # only when not the type's default

    @property
    def filled_by_server(self) -> bool:
        """The server supplies a value (default, identity, generated column)."""
        return bool(self.default or self.identity or self.generated)


@dataclass(frozen=True)
class ForeignKey:
    name: str
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]


@dataclass(frozen=True)
class TableShape:
    """A table and everything that hangs off it; equal shapes mean an untouched table."""

    key: str  # display name: ``orders`` or ``billing.orders``
    qualified: str  # quoted ``"schema"."name"`` for SQL
    columns: tuple[ColumnShape, ...]
    constraints: tuple[tuple[str, str, str], ...]  # (name, contype, definition)
    foreign_keys: tuple[ForeignKey, ...]
    checks: tuple[tuple[tuple[str, ...], str], ...]  # (columns, definition)
    indexes: tuple[tuple[str, str], ...]
    triggers: tuple[tuple[str, str], ...]


CODE = ""  # the group of schemas, extensions, types and functions

Objects = dict[str, dict[str, Any]]


@dataclass
class Snapshot:
    """A schema as objects (``"column orders.id" -> {attribute: value}``) in groups: one
    per table, view or free sequence (named like it, with everything that hangs off it)
    and :data:`CODE` for the rest. Groups let a snapshot be patched and compared one
    table at a time (:meth:`patch`, :meth:`diff` with ``groups``)."""

    groups: dict[str, Objects] = field(default_factory=dict)
    tables: dict[str, TableShape] = field(default_factory=dict)
    members: dict[str, str] = field(default_factory=dict)  # index / owned sequence -> group
    sql_names: dict[str, str] = field(default_factory=dict)  # group -> quoted SQL name
    oids: dict[int, str] = field(default_factory=dict)  # table, view, sequence -> group

    @property
    def objects(self) -> Objects:
        """Every object of every group."""
        return {k: v for group in self.groups.values() for k, v in group.items()}

    def group_of(self, name: str) -> str:
        """The group a relation (display name) belongs to: its table for an index or an
        owned sequence, else its own."""
        return self.members.get(name, name)

    def diff(self, found: Snapshot, groups: Iterable[str] | None = None) -> list[str]:
        """Differences from this (expected) snapshot to ``found``, one readable line each;
        only in ``groups`` when given (the groups a step can have changed)."""
        if groups is None:
            return diff_objects(self.objects, found.objects)
        wanted = set(groups)
        return diff_objects(self._subset(wanted), found._subset(wanted))

    def _subset(self, groups: set[str]) -> Objects:
        return {k: v for g in groups for k, v in self.groups.get(g, {}).items()}

    def patch(self, part: Snapshot, touched: set[str], code: bool) -> Snapshot:
        """A new snapshot: this one with the groups in ``touched`` (and the code group
        when ``code``) replaced by what ``part`` (a partial :func:`take`) holds of them."""
        gone = touched | ({CODE} if code else set())
        groups = {g: o for g, o in self.groups.items() if g not in gone}
        groups.update({g: o for g, o in part.groups.items() if g != CODE or code})
        tables = {t: shape for t, shape in self.tables.items() if t not in gone}
        tables.update(part.tables)
        members = {m: g for m, g in self.members.items() if g not in gone}
        members.update(part.members)
        oids = {o: g for o, g in self.oids.items() if g not in gone}
        oids.update(part.oids)
        return Snapshot(groups, tables, members, {**self.sql_names, **part.sql_names}, oids)


def display_name(schema: str, name: str) -> str:
    return name if schema == "public" else f"{schema}.{name}"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sql_name(schema: str, name: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(name)}"


def take(conn: Connection, exclude_tables: Iterable[str] = (), *,
         only: Iterable[str] | None = None, code: bool = True) -> Snapshot:
    """Read the schema of the connected database (one query), leaving out ``exclude_tables``
    (display names such as ``alembic_version``) and everything that hangs off them.

    ``only``: quoted SQL names (``"public"."orders"``); read just these relations, the
    indexes, constraints, triggers and policies on them and the sequences they own
    (names that no longer exist are skipped). ``code``: read schemas, extensions, types
    and functions too."""
    query = _QUERY if only is None else _PARTIAL
    params = {"only": None if only is None else list(only), "code": code}
    raw = json.loads(conn.execute(text(query), params).scalar_one())
    return build(raw, set(exclude_tables))


class _Builder:
    """Collects objects into their groups while :func:`build` reads the raw rows."""

    def __init__(self, excluded: set[str]) -> None:
        self.excluded = excluded
        self.snap = Snapshot()

    def put(self, group: str, key: str, value: dict[str, Any]) -> None:
        self.snap.groups.setdefault(group, {})[key] = value


def build(raw: Mapping[str, Any], excluded: set[str]) -> Snapshot:
    b = _Builder(excluded)
    snap = b.snap
    for schema in raw["schemas"]:
        if schema != "public":
            b.put(CODE, f"schema {schema}", {})
    for name, version in raw["extensions"]:
        b.put(CODE, f"extension {name}", {"version": version})
    columns: dict[str, list[tuple[int, ColumnShape]]] = {}
    for (schema, rel, kind, unlogged, row_security, force_row_security, partition_bound,
         partition_key, oid) in raw["relations"]:
        table = display_name(schema, rel)
        snap.oids[oid] = table
        if table not in excluded:
            b.put(table, f"table {table}", {
                "kind": {"r": "table", "p": "partitioned table", "f": "foreign table"}[kind],
                "unlogged": unlogged, "partition_key": partition_key,
                "partition_bound": partition_bound,
                "row_security": "forced" if force_row_security else row_security,
            })
            snap.sql_names[table] = sql_name(schema, rel)
            columns[table] = []
    for (schema, rel, name, type_, notnull, default, identity, generated, category,
         labels, attnum, collation) in raw["columns"]:
        table = display_name(schema, rel)
        if table not in columns:
            continue
        col = ColumnShape(name, type_, not notnull, default, identity, generated, category,
                          tuple(labels or ()), collation)
        columns[table].append((attnum, col))
        b.put(table, f"column {table}.{name}", {
            "type": type_, "nullable": col.nullable, "default": default,
            "identity": {"a": "always", "d": "by default"}.get(identity),
            "generated": default if generated else None, "collation": collation,
        })
    per_table: dict[str, dict[str, list[Any]]] = {t: {"constraints": [], "fks": [], "checks": [],
                                                       "indexes": [], "triggers": []}
                                                   for t in columns}
    _constraints(raw, b, per_table)
    _hanging(raw, b, per_table)
    _sequences(raw, b)
    _types_and_code(raw, b)
    for table, cols in columns.items():
        parts = per_table[table]
        schema, _, rel = table.rpartition(".")
        snap.tables[table] = TableShape(
            key=table,
            qualified=f"{quote_ident(schema or 'public')}.{quote_ident(rel)}",
            columns=tuple(c for _, c in sorted(cols, key=lambda item: item[0])),
            constraints=tuple(sorted(parts["constraints"])),
            foreign_keys=tuple(sorted(parts["fks"], key=lambda fk: fk.name)),
            checks=tuple(sorted(parts["checks"])),
            indexes=tuple(sorted(parts["indexes"])),
            triggers=tuple(sorted(parts["triggers"])),
        )
    return snap


def _hanging(raw: Mapping[str, Any], b: _Builder,
             per_table: dict[str, dict[str, list[Any]]]) -> None:
    """Indexes, triggers and policies of tables and (materialized) views."""
    for schema, rel, name, definition, valid in raw["indexes"]:
        table = display_name(schema, rel)
        if table not in b.excluded:
            b.put(table, f"index {table}.{name}", {"definition": definition, "valid": valid})
            b.snap.members[display_name(schema, name)] = table
        if table in per_table:
            per_table[table]["indexes"].append((name, definition))
    for schema, rel, name, definition, enabled in raw["triggers"]:
        table = display_name(schema, rel)
        if table not in b.excluded:
            b.put(table, f"trigger {table}.{name}", {"definition": definition,
                                                     "enabled": enabled})
        if table in per_table:
            per_table[table]["triggers"].append((name, definition))
    for schema, rel, name, command, permissive, roles, using, check in raw["policies"]:
        table = display_name(schema, rel)
        if table not in b.excluded:
            b.put(table, f"policy {table}.{name}", {
                "command": command, "permissive": permissive, "roles": ", ".join(roles),
                "using": using, "with_check": check})


def _constraints(raw: Mapping[str, Any], b: _Builder,
                 per_table: dict[str, dict[str, list[Any]]]) -> None:
    kinds = {"p": "primary key", "u": "unique", "f": "foreign key", "c": "check",
             "x": "exclusion", "t": "trigger", "n": "not null"}
    for schema, rel, name, contype, definition, cols, ref, ref_cols in raw["constraints"]:
        table = display_name(schema, rel)
        if table not in per_table or contype == "n":  # PG 18 not-null rows: columns say it
            continue
        b.put(table, f"constraint {table}.{name}", {"kind": kinds.get(contype, contype),
                                                    "definition": definition})
        per_table[table]["constraints"].append((name, contype, definition))
        if contype == "f" and ref:
            per_table[table]["fks"].append(ForeignKey(
                name, tuple(cols or ()), display_name(ref[0], ref[1]), tuple(ref_cols or ())))
        elif contype == "c":
            per_table[table]["checks"].append((tuple(cols or ()), definition))


def _sequences(raw: Mapping[str, Any], b: _Builder) -> None:
    for (schema, name, type_, start, increment, minimum, maximum, cache, cycle,
         owner, oid) in raw["sequences"]:
        table = display_name(owner[0], owner[1]) if owner else None
        if table in b.excluded:
            continue
        sequence = display_name(schema, name)
        group = table or sequence
        b.snap.oids[oid] = group
        b.put(group, f"sequence {sequence}", {
            "type": type_, "start": start, "increment": increment, "min": minimum,
            "max": maximum, "cache": cache, "cycle": cycle,
            "owned_by": f"{table}.{owner[2]}" if owner else None,
        })
        if table:
            b.snap.members[sequence] = table
        else:
            b.snap.sql_names[sequence] = sql_name(schema, name)


def _types_and_code(raw: Mapping[str, Any], b: _Builder) -> None:
    for schema, name, labels in raw["enums"]:
        b.put(CODE, f"enum {display_name(schema, name)}", {"labels": ", ".join(labels or ())})
    for schema, name, base, notnull, default in raw["domains"]:
        b.put(CODE, f"domain {display_name(schema, name)}", {
            "type": base, "nullable": not notnull, "default": default})
    for schema, name, constraint, definition in raw["domain_constraints"]:
        b.put(CODE, f"domain constraint {display_name(schema, name)}.{constraint}", {
            "definition": definition})
    for schema, name, kind, definition, oid in raw["views"]:
        label = "materialized view" if kind == "m" else "view"
        view = display_name(schema, name)
        b.snap.oids[oid] = view
        b.put(view, f"{label} {view}", {"definition": _squash(definition)})
        b.snap.sql_names[view] = sql_name(schema, name)
    for schema, name, args, definition in raw["functions"]:
        if display_name(schema, name) not in b.excluded:
            b.put(CODE, f"function {display_name(schema, name)}({args})", {
                "definition": _squash(definition)})


def _squash(sql: str | None) -> str | None:
    return re.sub(r"\s+", " ", sql).strip() if sql else sql


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    shown = str(value)
    return shown if len(shown) <= 120 else shown[:117] + "..."


def diff_objects(expected: Mapping[str, Mapping[str, Any]],
                 found: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """``"column orders.shop_id: type integer -> bigint"``, ``"index orders.ix: missing"``,
    ``"table tmp: unexpected"``, sorted by object."""
    lines: list[str] = []
    for key in sorted(set(expected) | set(found)):
        if key not in found:
            lines.append(f"{key}: missing")
        elif key not in expected:
            lines.append(f"{key}: unexpected")
        else:
            before, after = expected[key], found[key]
            changes = [f"{attr} {_show(before.get(attr))} -> {_show(after.get(attr))}"
                       for attr in sorted(set(before) | set(after))
                       if before.get(attr) != after.get(attr)]
            if changes:
                lines.append(f"{key}: {', '.join(changes)}")
    return lines
