"""API version negotiation by request header, and response transformers for old
versions built from payload downgraders.

::

    versions = ApiVersions(supported=("1.0", "2.0"), default="2.0")
    app = ApiVersionMiddleware(app, versions)            # 400 for an unknown version
    # in a handler: version = request.scope["umbau.api_version"]
    ocr = PayloadView("ocr_result", {"1.0": "0", "2.0": "2.0"})
    body["ocr_result"] = ocr.render(document.ocr_result, version)
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from umbau.errors import UsageError
from umbau.payload.registry import Registry
from umbau.web.deprecation import ASGIApp, Receive, Scope, Send


class UnsupportedApiVersion(ValueError):
    """A request asked for an API version the application does not serve."""


@dataclass(frozen=True)
class ApiVersions:
    """The API versions an application serves, read from ``header`` (default
    ``X-API-Version``); a request without the header gets ``default``."""

    supported: Sequence[str]
    default: str
    header: str = "X-API-Version"

    def __post_init__(self) -> None:
        if self.default not in self.supported:
            raise UsageError(
                f"default API version {self.default!r} is not among the "
                f"supported ones ({', '.join(self.supported)})"
            )

    def pick(self, value: str | None) -> str:
        """The version a request asked for; :class:`UnsupportedApiVersion` naming the
        supported versions when it is not one of them."""
        if value is None or not value.strip():
            return self.default
        value = value.strip()
        if value not in self.supported:
            raise UnsupportedApiVersion(
                f"unsupported API version {value!r}: send {self.header} with one of "
                f"{', '.join(self.supported)}"
            )
        return value


class ApiVersionMiddleware:
    """ASGI middleware: puts the negotiated version into ``scope["umbau.api_version"]``
    and answers ``400`` (JSON body naming the supported versions) for an unknown one.
    ``prefixes`` limits it to paths that start with one of them (default: every path).
    """

    def __init__(self, app: ASGIApp, versions: ApiVersions,
                 prefixes: Sequence[str] = ()) -> None:
        self.app = app
        self.versions = versions
        self.prefixes = tuple(prefixes)
        self._header = versions.header.lower().encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (
                self.prefixes and not str(scope.get("path", "")).startswith(self.prefixes)):
            await self.app(scope, receive, send)
            return
        asked = next(
            (v.decode("latin-1") for k, v in scope.get("headers", []) if k.lower() == self._header),
            None,
        )
        try:
            version = self.versions.pick(asked)
        except UnsupportedApiVersion as exc:
            body = json.dumps(
                {
                    "error": "unsupported_api_version",
                    "message": str(exc),
                    "supported": list(self.versions.supported),
                }
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 400,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        scope["umbau.api_version"] = version

        async def send_with_version(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = [
                    *list(message.get("headers", [])),
                    (self._header, version.encode("latin-1")),
                ]
            await send(message)

        await self.app(scope, receive, send_with_version)


@dataclass(frozen=True)
class PayloadView:
    """How a payload ``kind`` looks in each API version: ``versions`` maps an API version
    to the payload version its clients read. :meth:`render` upgrades or downgrades a
    stored document to it (downgraders registered with ``@payload.downgrader``)."""

    kind: str
    versions: Mapping[str, str]
    registry: Registry | None = None

    def render(self, doc: Mapping[str, Any] | None, api_version: str) -> dict[str, Any] | None:
        """``doc`` in the payload version of ``api_version``; None stays None.

        Raises :class:`~umbau.errors.PayloadError` when a step is missing, and
        :class:`UnsupportedApiVersion` for an API version the view does not know.
        """
        if doc is None:
            return None
        if api_version not in self.versions:
            raise UnsupportedApiVersion(f"no {self.kind} format for API version {api_version!r}")
        registry = self.registry or _default_registry()
        kind = registry.kind(self.kind)
        versions = kind.chain()
        want = self.versions[api_version]
        if versions.index(kind.version_of(doc)) <= versions.index(want):
            return registry.upgrade(self.kind, doc, want)
        return registry.downgrade(self.kind, doc, want)


def _default_registry() -> Registry:
    from umbau import payload

    return payload.registry
