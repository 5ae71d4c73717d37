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
WITH ns AS MATERIALIZED (
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
)
SELECT json_build_object(
  'schemas', (SELECT coalesce(json_agg(nspname), '[]') FROM ns),
  'extensions', (SELECT coalesce(json_agg(json_build_array(extname, extversion)), '[]')
                 FROM pg_extension WHERE extname <> 'plpgsql'),
  'relations', (SELECT coalesce(json_agg(json_build_array(nspname, relname, relkind,
                    relpersistence = 'u', relrowsecurity, relforcerowsecurity, partbound,
                    partkey)), '[]')
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
                     LIMIT 1))), '[]')
                FROM pg_sequence s JOIN rels r ON r.oid = s.seqrelid),
  'enums', (SELECT coalesce(json_agg(json_build_array(n.nspname, t.typname,
                (SELECT json_agg(e.enumlabel ORDER BY e.enumsortorder)
                 FROM pg_enum e WHERE e.enumtypid = t.oid))), '[]')
            FROM pg_type t JOIN ns n ON n.oid = t.typnamespace WHERE t.typtype = 'e'),
  'domains', (SELECT coalesce(json_agg(json_build_array(n.nspname, t.typname,
                format_type(t.typbasetype, t.typtypmod), t.typnotnull, t.typdefault)), '[]')
              FROM pg_type t JOIN ns n ON n.oid = t.typnamespace WHERE t.typtype = 'd'),
  'domain_constraints', (SELECT coalesce(json_agg(json_build_array(n.nspname, t.typname,
                c.conname, pg_get_constraintdef(c.oid))), '[]')
              FROM pg_constraint c JOIN pg_type t ON t.oid = c.contypid
              JOIN ns n ON n.oid = t.typnamespace WHERE c.contype <> 'n'),
  'policies', (SELECT coalesce(json_agg(json_build_array(r.nspname, r.relname, p.polname,
                p.polcmd, p.polpermissive,
                ARRAY(SELECT CASE WHEN x = 0 THEN 'public' ELSE pg_get_userbyid(x)::text END
                      FROM unnest(p.polroles) x ORDER BY 1),
                pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid))),
                '[]')
              FROM pg_policy p JOIN rels r ON r.oid = p.polrelid),
  'views', (SELECT coalesce(json_agg(json_build_array(nspname, relname, relkind,
                pg_get_viewdef(oid))), '[]')
            FROM rels WHERE relkind IN ('v', 'm')),
  'triggers', (SELECT coalesce(json_agg(json_build_array(r.nspname, r.relname, tg.tgname,
                   pg_get_triggerdef(tg.oid), tg.tgenabled)), '[]')
               FROM pg_trigger tg JOIN rels r ON r.oid = tg.tgrelid WHERE NOT tg.tgisinternal),
  'functions', (SELECT coalesce(json_agg(json_build_array(n.nspname, p.proname,
                    pg_get_function_identity_arguments(p.oid),
                    CASE WHEN p.prokind IN ('f', 'p') THEN pg_get_functiondef(p.oid)
                         ELSE p.prokind::text END)), '[]')
                FROM pg_proc p JOIN ns n ON n.oid = p.pronamespace
                WHERE NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.deptype = 'e'
                                  AND e.classid = 'pg_proc'::regclass AND e.objid = p.oid))
)::text
"""


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


@dataclass
class Snapshot:
    """A schema as a flat mapping ``"column orders.id" -> {attribute: value}``."""

    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    tables: dict[str, TableShape] = field(default_factory=dict)

    def diff(self, found: Snapshot) -> list[str]:
        """Differences from this (expected) snapshot to ``found``, one readable line each."""
        return diff_objects(self.objects, found.objects)


def display_name(schema: str, name: str) -> str:
    return name if schema == "public" else f"{schema}.{name}"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def take(conn: Connection, exclude_tables: Iterable[str] = ()) -> Snapshot:
    """Read the schema of the connected database (one query), leaving out ``exclude_tables``
    (display names such as ``alembic_version``) and everything that hangs off them."""
    raw = json.loads(conn.execute(text(_QUERY)).scalar_one())
    return build(raw, set(exclude_tables))


def build(raw: Mapping[str, Any], excluded: set[str]) -> Snapshot:
    snap = Snapshot()
    objects = snap.objects
    for schema in raw["schemas"]:
        if schema != "public":
            objects[f"schema {schema}"] = {}
    for name, version in raw["extensions"]:
        objects[f"extension {name}"] = {"version": version}
    columns: dict[str, list[tuple[int, ColumnShape]]] = {}
    for (schema, rel, kind, unlogged, row_security, force_row_security, partition_bound,
         partition_key) in raw["relations"]:
        table = display_name(schema, rel)
        if table not in excluded:
            objects[f"table {table}"] = {
                "kind": {"r": "table", "p": "partitioned table", "f": "foreign table"}[kind],
                "unlogged": unlogged, "partition_key": partition_key,
                "partition_bound": partition_bound,
                "row_security": "forced" if force_row_security else row_security,
            }
            columns[table] = []
    for (schema, rel, name, type_, notnull, default, identity, generated, category,
         labels, attnum, collation) in raw["columns"]:
        table = display_name(schema, rel)
        if table not in columns:
            continue
        col = ColumnShape(name, type_, not notnull, default, identity, generated, category,
                          tuple(labels or ()), collation)
        columns[table].append((attnum, col))
        objects[f"column {table}.{name}"] = {
            "type": type_, "nullable": col.nullable, "default": default,
            "identity": {"a": "always", "d": "by default"}.get(identity),
            "generated": default if generated else None, "collation": collation,
        }
    per_table: dict[str, dict[str, list[Any]]] = {t: {"constraints": [], "fks": [], "checks": [],
                                                       "indexes": [], "triggers": []}
                                                   for t in columns}
    _constraints(raw, objects, per_table)
    # Indexes and triggers of tables, and of (materialized) views: objects only.
    for schema, rel, name, definition, valid in raw["indexes"]:
        table = display_name(schema, rel)
        if table not in excluded:
            objects[f"index {table}.{name}"] = {"definition": definition, "valid": valid}
        if table in per_table:
            per_table[table]["indexes"].append((name, definition))
    for schema, rel, name, definition, enabled in raw["triggers"]:
        table = display_name(schema, rel)
        if table not in excluded:
            objects[f"trigger {table}.{name}"] = {"definition": definition, "enabled": enabled}
        if table in per_table:
            per_table[table]["triggers"].append((name, definition))
    for schema, rel, name, command, permissive, roles, using, check in raw["policies"]:
        table = display_name(schema, rel)
        if table not in excluded:
            objects[f"policy {table}.{name}"] = {
                "command": command, "permissive": permissive, "roles": ", ".join(roles),
                "using": using, "with_check": check}
    _sequences(raw, objects, excluded)
    _types_and_code(raw, objects)
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


def _constraints(raw: Mapping[str, Any], objects: dict[str, dict[str, Any]],
                 per_table: dict[str, dict[str, list[Any]]]) -> None:
    kinds = {"p": "primary key", "u": "unique", "f": "foreign key", "c": "check",
             "x": "exclusion", "t": "trigger", "n": "not null"}
    for schema, rel, name, contype, definition, cols, ref, ref_cols in raw["constraints"]:
        table = display_name(schema, rel)
        if table not in per_table or contype == "n":  # PG 18 not-null rows: columns say it
            continue
        objects[f"constraint {table}.{name}"] = {"kind": kinds.get(contype, contype),
                                                 "definition": definition}
        per_table[table]["constraints"].append((name, contype, definition))
        if contype == "f" and ref:
            per_table[table]["fks"].append(ForeignKey(
                name, tuple(cols or ()), display_name(ref[0], ref[1]), tuple(ref_cols or ())))
        elif contype == "c":
            per_table[table]["checks"].append((tuple(cols or ()), definition))


def _sequences(raw: Mapping[str, Any], objects: dict[str, dict[str, Any]],
               excluded: set[str]) -> None:
    for (schema, name, type_, start, increment, minimum, maximum, cache, cycle,
         owner) in raw["sequences"]:
        owned_by = f"{display_name(owner[0], owner[1])}.{owner[2]}" if owner else None
        if owner and display_name(owner[0], owner[1]) in excluded:
            continue
        objects[f"sequence {display_name(schema, name)}"] = {
            "type": type_, "start": start, "increment": increment, "min": minimum,
            "max": maximum, "cache": cache, "cycle": cycle, "owned_by": owned_by,
        }


def _types_and_code(raw: Mapping[str, Any], objects: dict[str, dict[str, Any]]) -> None:
    for schema, name, labels in raw["enums"]:
        objects[f"enum {display_name(schema, name)}"] = {"labels": ", ".join(labels or ())}
    for schema, name, base, notnull, default in raw["domains"]:
        objects[f"domain {display_name(schema, name)}"] = {
            "type": base, "nullable": not notnull, "default": default}
    for schema, name, constraint, definition in raw["domain_constraints"]:
        objects[f"domain constraint {display_name(schema, name)}.{constraint}"] = {
            "definition": definition}
    for schema, name, kind, definition in raw["views"]:
        label = "materialized view" if kind == "m" else "view"
        objects[f"{label} {display_name(schema, name)}"] = {
            "definition": _squash(definition)}
    for schema, name, args, definition in raw["functions"]:
        objects[f"function {display_name(schema, name)}({args})"] = {
            "definition": _squash(definition)}


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
