"""The payload backfill: upgrade every stored document of a kind, batch by batch.

Only rows not yet at the latest version are touched (the WHERE clause reads the
version in SQL). When every upgrader of the chain has a SQL form, the backfill is a
set-based ``SET column = CASE version WHEN … END`` per batch; otherwise each batch is
read, upgraded in Python with the registry's upgraders and written back. Either way it
runs on umbau's backfill engine: keyset batches, resumable, exactly once per row.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from umbau.errors import UsageError
from umbau.payload.registry import Kind, Registry
from umbau.payload.sql import literal, upgrade_expression
from umbau.postgres.quoting import quote_ident

Row = dict[str, Any]


def payload_backfill(table: str, column: str, kind: str, *, registry: Registry,
                     name: str | None = None, column_type: str = "jsonb",
                     use_sql: bool | None = None, **options: Any) -> dict[str, Any]:
    """The arguments of a :class:`~umbau.backfill.Backfill` that upgrades ``table.column``
    to the latest version of ``kind`` (``Backfill.from_payload`` builds it).

    ``column_type`` is ``jsonb`` or ``json``. ``use_sql``: None picks the SQL form when
    every upgrader has one, True insists on it (:class:`~umbau.errors.UsageError` when
    one lacks it), False always runs the Python upgraders. Other keyword arguments
    (``key``, ``batch_size``, ``pause``, ``chunks``…) go to ``Backfill``.
    """
    if column_type not in ("json", "jsonb"):
        raise UsageError(f"payload backfill of {table}.{column}: column_type must be json or "
                         f"jsonb, not {column_type!r}")
    spec = registry.kind(kind)
    versions = spec.chain()
    doc = quote_ident(column) + ("::jsonb" if column_type == "json" else "")
    version = None if spec.version_sql is None else spec.version_sql.replace("{doc}", doc)
    where, verify = _predicates(quote_ident(column), version, versions[-1])
    common: dict[str, Any] = {"name": name or f"payload_{kind}_{column}", "table": table,
                              "where": where, "verify": verify, **options}
    if _sql_possible(spec, version, use_sql, table, column):
        assert version is not None  # _sql_possible checked it
        expression = upgrade_expression(spec, doc, version)
        if column_type == "json":
            expression = f"({expression})::json"
        return {"set": {column: expression}, **common}
    return {"transform": _transform(registry, kind, column, versions[-1]), "columns": [column],
            **common}


def _predicates(column: str, version: str | None, latest: str) -> tuple[str, str | None]:
    if version is None:  # only Python can read the version: every document is a candidate
        return f"{column} IS NOT NULL", None
    latest_sql = literal(latest)
    return (f"{column} IS NOT NULL AND {version} IS DISTINCT FROM {latest_sql}",
            f"{column} IS NULL OR {version} = {latest_sql}")


def _sql_possible(spec: Kind, version: str | None, use_sql: bool | None,
                  table: str, column: str) -> bool:
    missing = [f"{e.source}->{e.target}" for e in spec.upgraders.values() if e.sql is None]
    if version is None:
        missing.append("version_sql")
    if use_sql and missing:
        raise UsageError(f"payload backfill of {table}.{column}: kind {spec.name!r} has no SQL "
                         f"form for {', '.join(missing)}: add sql= or drop use_sql=True")
    return use_sql is not False and not missing


def _transform(registry: Registry, kind: str, column: str, latest: str) -> Any:
    def upgrade_rows(rows: Sequence[Row]) -> list[Row]:
        changed = []
        for row in rows:
            doc = row[column]
            if doc is None:
                continue
            if isinstance(doc, str):
                doc = json.loads(doc)
            new = registry.upgrade(kind, doc)
            if new != doc:
                changed.append({**row, column: new})
        return changed

    # A stable name: the backfill's fingerprint counts a transform by its qualified name.
    upgrade_rows.__module__ = "umbau.payload"
    upgrade_rows.__qualname__ = f"upgrade[{kind}:{column}->{latest}]"
    return upgrade_rows
