"""Chains of versioned document formats: upgraders, downgraders and version readers.

A *kind* is one stored JSON format (``ocr_result``) whose documents carry their version
(by default in the ``"version"`` key; a document without it is at the kind's first
version). Upgraders step a document from one version to the next; the chain of a kind
is linear: one first version, one upgrader out of each version, no gaps and no cycles.
Downgraders (optional) step back, for clients of older API versions.

The module is pure Python (no database): the backfill, the SQLAlchemy type and the web
middleware build on it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from umbau.errors import PayloadError

Document = dict[str, Any]
Step = Callable[[Document], Document]
VersionReader = Callable[[Mapping[str, Any]], "str | None"]
VersionWriter = Callable[[Document, str], Document]


def read_version_key(doc: Mapping[str, Any]) -> str | None:
    """The default version reader: ``doc["version"]`` as a string, None when absent."""
    value = doc.get("version")
    return None if value is None else str(value)


def write_version_key(doc: Document, version: str) -> Document:
    """The default version writer: sets ``doc["version"]``."""
    doc["version"] = version
    return doc


@dataclass(frozen=True)
class Edge:
    """One step of a chain: ``source`` → ``target`` by ``fn``; ``sql`` is the same step as
    a SQL expression over ``{doc}`` (jsonb), when the author gave one."""

    source: str
    target: str
    fn: Step
    sql: str | None = None


@dataclass
class Kind:
    """Everything registered for one kind of document."""

    name: str
    first: str | None = None
    read: VersionReader = read_version_key
    write: VersionWriter = write_version_key
    version_sql: str | None = "({doc} ->> 'version')"
    upgraders: dict[str, Edge] = field(default_factory=dict)
    downgraders: dict[str, Edge] = field(default_factory=dict)
    _chain: list[str] | None = field(default=None, repr=False)

    def chain(self) -> list[str]:
        """The versions of the kind, oldest first (computed once per registration).

        Raises :class:`PayloadError` for a gap (two versions that nothing leads to),
        a cycle, or a kind without upgraders.
        """
        if self._chain is None:
            self._chain = self._check()
        return self._chain

    def _check(self) -> list[str]:
        if not self.upgraders:
            raise PayloadError(f"payload kind {self.name!r} has no upgraders: register one "
                               "with @payload.upgrader")
        targets = {edge.target for edge in self.upgraders.values()}
        roots = sorted(set(self.upgraders) - targets)
        if self.first is not None and self.first not in self.upgraders:
            raise PayloadError(f"payload kind {self.name!r}: no upgrader starts at its first "
                               f"version {self.first!r}")
        if not roots:
            raise PayloadError(f"payload kind {self.name!r}: its upgraders form a cycle "
                               f"({' -> '.join(sorted(self.upgraders))}): remove one")
        if len(roots) > 1:
            raise PayloadError(f"payload kind {self.name!r} has a gap: versions {roots} are "
                               "each the start of a chain: add the upgrader that joins them")
        return self._walk(self.first or roots[0])

    def _walk(self, start: str) -> list[str]:
        versions = [start]
        while versions[-1] in self.upgraders:
            nxt = self.upgraders[versions[-1]].target
            if nxt in versions:
                raise PayloadError(f"payload kind {self.name!r}: upgraders form a cycle at "
                                   f"version {nxt!r}: remove one")
            versions.append(nxt)
        if len(versions) - 1 != len(self.upgraders):
            stray = sorted(set(self.upgraders) - set(versions))
            raise PayloadError(f"payload kind {self.name!r}: upgraders from {stray} are not "
                               f"reachable from the first version {start!r}: join them")
        return versions

    def stamp(self, doc: Document, version: str) -> Document:
        """Record ``version`` in ``doc``. With the default writer a document at the first
        version carries no ``"version"`` key, as such documents were written before
        versions existed."""
        if self.write is not write_version_key:
            return self.write(doc, version)
        if version == self.chain()[0]:
            doc.pop("version", None)
        else:
            doc["version"] = version
        return doc

    def version_of(self, doc: Mapping[str, Any]) -> str:
        """The version of ``doc``; a document without one is at the first version."""
        found = self.read(doc)
        return self.chain()[0] if found is None else found


class Registry:
    """Kinds by name. Refuses a second upgrader (or downgrader) out of the same version."""

    def __init__(self) -> None:
        self._kinds: dict[str, Kind] = {}

    def kind(self, name: str) -> Kind:
        """The registered kind ``name``; :class:`PayloadError` when unknown."""
        try:
            return self._kinds[name]
        except KeyError:
            known = ", ".join(sorted(self._kinds)) or "none"
            raise PayloadError(f"unknown payload kind {name!r} (registered: {known}): "
                               "import the module that registers its upgraders") from None

    def kinds(self) -> list[str]:
        return sorted(self._kinds)

    def define(self, name: str, *, first: str | None = None,
               read: VersionReader | None = None, write: VersionWriter | None = None,
               version_sql: str | None = None) -> Kind:
        """Declare how a kind stores its version (optional: the defaults read and write
        ``"version"``). ``version_sql`` is a SQL expression over ``{doc}`` that yields the
        version as text, or None when only Python can tell (the backfill then reads
        every non-null row)."""
        kind = self._kinds.setdefault(name, Kind(name))
        kind._chain = None
        if first is not None:
            kind.first = first
        if read is not None:
            kind.read = read
            kind.version_sql = version_sql
        elif version_sql is not None:
            kind.version_sql = version_sql
        if write is not None:
            kind.write = write
        return kind

    def add(self, name: str, source: str, target: str, fn: Step, *, sql: str | None = None,
            down: bool = False) -> Edge:
        """Register ``fn`` as the step ``source`` → ``target`` of kind ``name``."""
        if source == target:
            raise PayloadError(f"payload kind {name!r}: a step from {source!r} to itself")
        kind = self._kinds.setdefault(name, Kind(name))
        edges = kind.downgraders if down else kind.upgraders
        what = "a downgrader" if down else "an upgrader"
        if source in edges:
            old = edges[source]
            raise PayloadError(f"payload kind {name!r} already has {what} from {source!r} "
                               f"(to {old.target!r}, {_name_of(old.fn)}): remove one")
        edge = Edge(source, target, fn, sql)
        edges[source] = edge
        kind._chain = None
        return edge

    def upgrade(self, name: str, doc: Mapping[str, Any], to: str | None = None) -> Document:
        """``doc`` walked up the chain of ``name`` to version ``to`` (default: the latest).

        The input is not changed (the steps work on a deep copy). Raises
        :class:`PayloadError` for an unknown kind or version, a target older than the
        document, or a step that fails (naming kind, versions and the error).
        """
        kind = self.kind(name)
        versions = kind.chain()
        current = kind.version_of(doc)
        target = versions[-1] if to is None else to
        start, end = _index(kind, versions, current), _index(kind, versions, target)
        if end < start:
            raise PayloadError(f"payload kind {name!r}: document is at {current!r}, newer "
                               f"than {target!r}: use downgrade()")
        out: Document = copy.deepcopy(dict(doc))
        for version in versions[start:end]:
            out = _apply(kind, kind.upgraders[version], out)
        return out

    def downgrade(self, name: str, doc: Mapping[str, Any], to: str) -> Document:
        """``doc`` walked down to version ``to`` by the registered downgraders.

        Raises :class:`PayloadError` when a downgrader on the way is missing.
        """
        kind = self.kind(name)
        versions = kind.chain()
        current = kind.version_of(doc)
        start, end = _index(kind, versions, current), _index(kind, versions, to)
        if end > start:
            raise PayloadError(f"payload kind {name!r}: document is at {current!r}, older "
                               f"than {to!r}: use upgrade()")
        out: Document = copy.deepcopy(dict(doc))
        for version in reversed(versions[end + 1:start + 1]):
            edge = kind.downgraders.get(version)
            if edge is None:
                raise PayloadError(f"payload kind {name!r} has no downgrader from "
                                   f"{version!r}: register one with @payload.downgrader")
            out = _apply(kind, edge, out)
        return out

    def latest(self, name: str) -> str:
        """The newest version of kind ``name``."""
        return self.kind(name).chain()[-1]


def _index(kind: Kind, versions: list[str], version: str) -> int:
    try:
        return versions.index(version)
    except ValueError:
        raise PayloadError(f"payload kind {kind.name!r} has no version {version!r} (known: "
                           f"{', '.join(versions)}): register its upgrader") from None


def _apply(kind: Kind, edge: Edge, doc: Document) -> Document:
    try:
        out = edge.fn(doc)
    except Exception as exc:
        raise PayloadError(f"payload kind {kind.name!r}: step {edge.source} -> {edge.target} "
                           f"({_name_of(edge.fn)}) failed: {type(exc).__name__}: {exc}") from exc
    if not isinstance(out, dict):
        raise PayloadError(f"payload kind {kind.name!r}: step {edge.source} -> {edge.target} "
                           f"({_name_of(edge.fn)}) returned {type(out).__name__}, not a dict")
    return kind.stamp(out, edge.target)


def _name_of(fn: Callable[..., Any]) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
