"""Versioned JSON payloads: upgrade stored documents the way revisions upgrade schemas.

::

    from umbau import payload

    @payload.upgrader("ocr_result", from_="0", to="1.0")
    def ocr_1_0(doc):
        return {"text": doc.get("content", ""), "confidence": doc.get("score", 0.0), ...}

    payload.upgrade("ocr_result", {"content": "Rechnung", "score": 0.9})  # -> 1.0 document

Documents say their version in ``"version"`` (absent: the kind's first version) unless
:func:`define` names another reader. Upgrade stored rows with
:meth:`umbau.backfill.Backfill.from_payload` (batched, resumable, exactly once) and read
not-yet-upgraded rows in the new format with :class:`umbau.payload.types.VersionedJSON`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from umbau.payload.registry import (
    Document,
    Edge,
    Kind,
    Registry,
    Step,
    VersionReader,
    VersionWriter,
    read_version_key,
    write_version_key,
)

__all__ = [
    "Document",
    "Edge",
    "Kind",
    "Registry",
    "define",
    "downgrade",
    "downgrader",
    "latest",
    "read_version_key",
    "registry",
    "upgrade",
    "upgrader",
    "write_version_key",
]

#: The registry the decorators fill unless given another one.
registry = Registry()


def define(kind: str, *, first: str | None = None, read: VersionReader | None = None,
           write: VersionWriter | None = None, version_sql: str | None = None,
           on: Registry | None = None) -> Kind:
    """Declare a kind's first version and how its documents store their version."""
    return (on or registry).define(kind, first=first, read=read, write=write,
                                   version_sql=version_sql)


def upgrader(kind: str, *, from_: str, to: str, sql: str | None = None,
             on: Registry | None = None) -> Callable[[Step], Step]:
    """Decorator: register a function ``doc -> doc`` as the step ``from_`` → ``to``.

    ``sql`` optionally gives the same step as a SQL expression over ``{doc}`` (jsonb);
    when every step of a chain has one, the payload backfill runs as set-based SQL.
    The test helper :func:`umbau.payload.testing.check_sql_matches` proves both agree.
    Raises :class:`~umbau.errors.PayloadError` for a second upgrader out of ``from_``.
    """
    def register(fn: Step) -> Step:
        (on or registry).add(kind, from_, to, fn, sql=sql)
        return fn
    return register


def downgrader(kind: str, *, from_: str, to: str, sql: str | None = None,
               on: Registry | None = None) -> Callable[[Step], Step]:
    """Decorator: register a function ``doc -> doc`` as the step back ``from_`` → ``to``
    (for clients of older API versions)."""
    def register(fn: Step) -> Step:
        (on or registry).add(kind, from_, to, fn, sql=sql, down=True)
        return fn
    return register


def upgrade(kind: str, doc: Mapping[str, Any], to: str | None = None, *,
            on: Registry | None = None) -> Document:
    """``doc`` upgraded to version ``to`` (default: the latest); the input is unchanged."""
    return (on or registry).upgrade(kind, doc, to)


def downgrade(kind: str, doc: Mapping[str, Any], to: str, *,
              on: Registry | None = None) -> Document:
    """``doc`` downgraded to version ``to`` by the registered downgraders."""
    return (on or registry).downgrade(kind, doc, to)


def latest(kind: str, *, on: Registry | None = None) -> str:
    """The newest version of ``kind``."""
    return (on or registry).latest(kind)
