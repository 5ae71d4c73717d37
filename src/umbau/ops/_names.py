"""SQL text of the names and expressions the helpers build, and the names they derive.

Kept free of any database access so that lint can derive the same names (a contract
revision drops the column its expand revision added).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects import postgresql

from umbau.postgres.quoting import QualifiedName, parse_qualified

MAX_IDENTIFIER = 63  # NAMEDATALEN - 1 (PostgreSQL docs, "4.1.1. Identifiers and Key Words")
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_PREPARER = postgresql.dialect().identifier_preparer  # type: ignore[no-untyped-call]


def parse_table(table: str, schema: str | None = None) -> QualifiedName:
    """``table`` (maybe ``schema.table``) as a QualifiedName; ``schema`` wins when given."""
    parsed = parse_qualified(table)
    return QualifiedName(schema, parsed.name) if schema else parsed


def derived(*parts: str) -> str:
    """A name made of ``parts`` joined by ``_``, cut to 63 bytes with a hash suffix."""
    name = "_".join(parts)
    if len(name.encode()) <= MAX_IDENTIFIER:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return name.encode()[: MAX_IDENTIFIER - 9].decode(errors="ignore") + "_" + digest


def shadow_column(column: str) -> str:
    """The new column of a type change while both types live side by side."""
    return derived(column, "umbau_new")


def sync_name(table: str, source: str, target: str) -> str:
    """The dual-write trigger (and its function) keeping ``source`` and ``target`` equal."""
    return derived("umbau_sync", table, source, target)


def backfill_name(table: str, source: str, target: str) -> str:
    """The backfill filling ``target`` from ``source`` (letters, digits, ``_`` only)."""
    raw = derived("umbau", table, source, "to", target)
    return re.sub(r"[^A-Za-z0-9_]", "_", raw)


def column_list(columns: Sequence[Any]) -> str:
    """Index or key columns: plain names are quoted, anything else is an expression."""
    return ", ".join(_column(c) for c in columns)


def _column(column: Any) -> str:
    text = str(column)
    return ident(text) if _PLAIN.fullmatch(text) else text


def ident(name: str) -> str:
    """``name`` quoted only where PostgreSQL needs it (upper case, reserved words)."""
    return str(_PREPARER.quote(name))


def qualified(name: QualifiedName) -> str:
    if name.schema is None:
        return ident(name.name)
    return f"{ident(name.schema)}.{ident(name.name)}"
