"""Deprecated endpoints: ``Deprecation``, ``Sunset`` and successor ``Link`` headers,
rate-limited usage logs, a counter, and ``410 Gone`` after the sunset.

Header formats:

- ``Deprecation: @1767225600`` — RFC 9745 ("The Deprecation HTTP Response Header
  Field"): an RFC 9651 structured-field Date, ``@`` and Unix seconds, so every rule
  names the moment its route was (or will be) deprecated.
- ``Sunset: Thu, 01 Jan 2026 00:00:00 GMT`` — RFC 8594, an HTTP-date (IMF-fixdate).
- ``Link: <…>; rel="successor-version"`` — RFC 5829; ``rel="deprecation"`` for a page
  that explains the deprecation (RFC 9745 section 3).

:class:`DeprecationMiddleware` wraps an ASGI application (Starlette, FastAPI),
:class:`DeprecationWSGIMiddleware` a WSGI one (Flask). Both take the same rules.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

LOG = logging.getLogger("umbau.deprecation")

_PARAM = re.compile(r"\{[^{}/]+\}")


@dataclass(frozen=True)
class DeprecatedRoute:
    """One deprecated route.

    ``path`` is a template (``/api/v1/documents/{id}/ocr-text``; ``{name}`` matches one
    path segment); ``methods`` limits it (empty: every method). ``deprecated`` is when
    it was deprecated, ``sunset`` when it stops working, ``successor`` the URL (may use
    the template's ``{name}`` parameters) of what replaces it, ``info`` a page that
    explains. With ``gone_after_sunset`` requests after the sunset get ``410 Gone`` with
    the successor in a JSON body instead of reaching the application.
    """

    path: str
    deprecated: datetime
    sunset: datetime | None = None
    successor: str | None = None
    info: str | None = None
    methods: Sequence[str] = ()
    gone_after_sunset: bool = False
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for moment in (self.deprecated, self.sunset):
            if moment is not None and moment.tzinfo is None:
                raise ValueError(
                    f"{self.path}: give deprecated/sunset with a time zone "
                    "(datetime(..., tzinfo=UTC))"
                )
        parts = _PARAM.split(self.path)
        names = [m.group(0)[1:-1] for m in _PARAM.finditer(self.path)]
        regex = "".join(
            re.escape(part) + (f"(?P<{names[i]}>[^/]+)" if i < len(names) else "")
            for i, part in enumerate(parts)
        )
        object.__setattr__(self, "pattern", re.compile(regex + "/?"))

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """The path parameters when ``method path`` is this route, else None."""
        if self.methods and method.upper() not in {m.upper() for m in self.methods}:
            return None
        found = self.pattern.fullmatch(path)
        return None if found is None else found.groupdict()

    def headers(self, params: dict[str, str]) -> list[tuple[str, str]]:
        """The response headers for a request with path ``params``."""
        out = [("Deprecation", f"@{int(self.deprecated.timestamp())}")]
        if self.sunset is not None:
            out.append(("Sunset", format_datetime(self.sunset.astimezone(UTC), usegmt=True)))
        links = []
        if self.successor:
            links.append(f'<{self.successor_url(params)}>; rel="successor-version"')
        if self.info:
            links.append(f'<{self.info}>; rel="deprecation"')
        if links:
            out.append(("Link", ", ".join(links)))
        return out

    def successor_url(self, params: dict[str, str]) -> str | None:
        if self.successor is None:
            return None
        return _PARAM.sub(lambda m: params.get(m.group(0)[1:-1], m.group(0)), self.successor)

    def gone(self, now: datetime) -> bool:
        return self.gone_after_sunset and self.sunset is not None and now >= self.sunset


class UsageLog:
    """Logs each deprecated use at most once per ``interval`` seconds per route and
    client, and counts every use (``counts[route]``; also the Prometheus counter
    ``umbau_deprecated_requests_total{route}`` when prometheus-client is installed)."""

    def __init__(
        self,
        interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        logger: logging.Logger = LOG,
    ) -> None:
        self.interval = interval
        self.clock = clock
        self.logger = logger
        self.counts: dict[str, int] = {}
        self._last: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        self._counter = _prometheus_counter()

    def record(self, route: DeprecatedRoute, client: str, method: str, path: str) -> None:
        now = self.clock()
        with self._lock:
            self.counts[route.path] = self.counts.get(route.path, 0) + 1
            last = self._last.get((route.path, client))
            due = last is None or now - last >= self.interval
            if due:
                self._last[(route.path, client)] = now
        if self._counter is not None:
            self._counter.labels(route=route.path).inc()
        if due:
            self.logger.warning(
                "deprecated endpoint used: %s %s by %s (sunset %s%s)",
                method,
                path,
                client,
                route.sunset.date().isoformat() if route.sunset else "not set",
                f", use {route.successor}" if route.successor else "",
            )


_COUNTER: Any = None


def _prometheus_counter() -> Any:
    global _COUNTER
    if _COUNTER is None:
        try:
            from prometheus_client import Counter
        except ImportError:
            return None
        _COUNTER = Counter(
            "umbau_deprecated_requests_total", "Requests to deprecated endpoints", ["route"]
        )
    return _COUNTER


class _Rules:
    def __init__(
        self, routes: Iterable[DeprecatedRoute], usage: UsageLog | None, now: Callable[[], datetime]
    ) -> None:
        self.routes = list(routes)
        self.usage = usage or UsageLog()
        self.now = now

    def find(self, method: str, path: str) -> tuple[DeprecatedRoute, dict[str, str]] | None:
        for route in self.routes:
            params = route.match(method, path)
            if params is not None:
                return route, params
        return None

    def gone_body(self, route: DeprecatedRoute, params: dict[str, str]) -> bytes:
        body = {
            "error": "gone",
            "message": f"{route.path} was removed on "
            f"{route.sunset.isoformat() if route.sunset else '?'}",
            "successor": route.successor_url(params),
        }
        return json.dumps(body).encode()


def _utcnow() -> datetime:
    return datetime.now(UTC)


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class DeprecationMiddleware:
    """ASGI middleware: adds the deprecation headers to responses of ``routes``, logs and
    counts their use, and answers ``410 Gone`` after a sunset where the route asks."""

    def __init__(
        self,
        app: ASGIApp,
        routes: Iterable[DeprecatedRoute],
        *,
        usage: UsageLog | None = None,
        now: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.app = app
        self.rules = _Rules(routes, usage, now)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = (
            self.rules.find(scope.get("method", "GET"), scope.get("path", ""))
            if scope["type"] == "http"
            else None
        )
        if found is None:
            await self.app(scope, receive, send)
            return
        route, params = found
        client = (scope.get("client") or ("unknown",))[0]
        self.rules.usage.record(route, str(client), scope["method"], scope["path"])
        extra = [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in route.headers(params)
        ]
        if route.gone(self.rules.now()):
            body = self.rules.gone_body(route, params)
            await send(
                {
                    "type": "http.response.start",
                    "status": 410,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        *extra,
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        await self.app(scope, receive, send_with_headers)


WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class DeprecationWSGIMiddleware:
    """The same as :class:`DeprecationMiddleware` for WSGI applications (Flask)."""

    def __init__(
        self,
        app: WSGIApp,
        routes: Iterable[DeprecatedRoute],
        *,
        usage: UsageLog | None = None,
        now: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.app = app
        self.rules = _Rules(routes, usage, now)

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "")
        found = self.rules.find(method, path)
        if found is None:
            return self.app(environ, start_response)
        route, params = found
        self.rules.usage.record(route, environ.get("REMOTE_ADDR", "unknown"), method, path)
        extra = route.headers(params)
        if route.gone(self.rules.now()):
            body = self.rules.gone_body(route, params)
            start_response(
                "410 Gone",
                [("Content-Type", "application/json"), ("Content-Length", str(len(body))), *extra],
            )
            return [body]

        def start_with_headers(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            return start_response(status, list(headers) + extra, exc_info)

        return self.app(environ, start_with_headers)
