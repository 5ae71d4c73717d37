"""``VersionedJSON``: a SQLAlchemy column type that upgrades documents as they are read."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import JSON, TypeDecorator, TypeEngine

from umbau.payload.registry import Registry


class VersionedJSON(TypeDecorator[Any]):
    """A JSON(B) column whose documents are payloads of ``kind``.

    Read: every non-null document is upgraded to ``to`` (default: the latest version),
    so the application works with the new format while the payload backfill is still
    running. Written: a document without a version is stamped with the version the
    application works with (``to`` or the latest), since that is the format it writes.
    ``registry`` defaults to :data:`umbau.payload.registry`. On PostgreSQL the column is
    ``jsonb``; ``as_json=True`` keeps a ``json`` column. A document that cannot be
    upgraded raises :class:`~umbau.errors.PayloadError` naming kind and version.
    """

    impl = JSON
    cache_ok = True

    def __init__(self, kind: str, *, to: str | None = None, registry: Registry | None = None,
                 as_json: bool = False) -> None:
        super().__init__()
        self.kind = kind
        self.to = to
        self.registry = registry
        self.as_json = as_json

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql" and not self.as_json:
            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(JSON())

    def _registry(self) -> Registry:
        if self.registry is not None:
            return self.registry
        from umbau import payload

        return payload.registry

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        return self._registry().upgrade(self.kind, value, self.to)

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if not isinstance(value, dict):
            return value
        registry = self._registry()
        kind = registry.kind(self.kind)
        if kind.read(value) is not None:
            return value
        return kind.stamp(dict(value), self.to or registry.latest(self.kind))
