"""Deprecation headers, usage logs, 410 after the sunset, and version negotiation:
ASGI through Starlette's test client, WSGI through wsgiref's request helpers."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from umbau.payload import Registry
from umbau.web import (
    ApiVersionMiddleware,
    ApiVersions,
    DeprecatedRoute,
    DeprecationMiddleware,
    DeprecationWSGIMiddleware,
    PayloadView,
    UnsupportedApiVersion,
    UsageLog,
)

DEPRECATED = datetime(2025, 3, 1, tzinfo=UTC)
SUNSET = datetime(2025, 12, 1, tzinfo=UTC)
ROUTE = DeprecatedRoute("/api/v1/documents/{id}/ocr-text", deprecated=DEPRECATED,
                        sunset=SUNSET, successor="/api/v2/documents/{id}/extracted-text",
                        info="https://example.org/deprecations", gone_after_sunset=True)


async def echo(request: Request) -> JSONResponse:
    return JSONResponse({"path": request.url.path,
                         "version": request.scope.get("umbau.api_version")})


def asgi_client(now: datetime, usage: UsageLog | None = None) -> TestClient:
    app = Starlette(routes=[Route("/{rest:path}", echo)])
    return TestClient(DeprecationMiddleware(app, [ROUTE], usage=usage, now=lambda: now))


def test_headers_follow_rfc_9745_and_rfc_8594_before_the_sunset() -> None:
    response = asgi_client(datetime(2025, 6, 1, tzinfo=UTC)).get("/api/v1/documents/42/ocr-text")
    assert response.status_code == 200
    assert response.headers["deprecation"] == f"@{int(DEPRECATED.timestamp())}"
    assert parsedate_to_datetime(response.headers["sunset"]) == SUNSET
    assert response.headers["sunset"] == "Mon, 01 Dec 2025 00:00:00 GMT"
    assert response.headers["link"] == ('</api/v2/documents/42/extracted-text>; '
                                        'rel="successor-version", '
                                        '<https://example.org/deprecations>; rel="deprecation"')


def test_other_routes_get_no_headers() -> None:
    response = asgi_client(datetime(2025, 6, 1, tzinfo=UTC)).get("/api/v2/documents/42")
    assert "deprecation" not in response.headers
    assert "sunset" not in response.headers


def test_after_the_sunset_the_route_is_gone_with_its_successor() -> None:
    response = asgi_client(datetime(2026, 1, 1, tzinfo=UTC)).get("/api/v1/documents/7/ocr-text")
    assert response.status_code == 410
    assert response.json()["successor"] == "/api/v2/documents/7/extracted-text"
    assert response.headers["deprecation"].startswith("@")


def test_use_is_counted_always_and_logged_once_per_interval(
        caplog: pytest.LogCaptureFixture) -> None:
    ticks = iter([0.0, 1.0, 2.0, 100.0])
    usage = UsageLog(interval=60, clock=lambda: next(ticks))
    client = asgi_client(datetime(2025, 6, 1, tzinfo=UTC), usage)
    with caplog.at_level(logging.WARNING, logger="umbau.deprecation"):
        for _ in range(4):
            client.get("/api/v1/documents/1/ocr-text")
    assert usage.counts == {ROUTE.path: 4}
    logged = [r.getMessage() for r in caplog.records if r.name == "umbau.deprecation"]
    assert len(logged) == 2
    assert "deprecated endpoint used: GET /api/v1/documents/1/ocr-text by testclient" in logged[0]


def test_method_limits_and_naive_dates() -> None:
    only_post = DeprecatedRoute("/x", deprecated=DEPRECATED, methods=("POST",))
    assert only_post.match("GET", "/x") is None
    assert only_post.match("post", "/x") == {}
    with pytest.raises(ValueError, match="time zone"):
        DeprecatedRoute("/x", deprecated=datetime(2025, 1, 1))


def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def call_wsgi(path: str, now: datetime) -> tuple[str, dict[str, str], bytes]:
    environ: dict[str, Any] = {"PATH_INFO": path}
    setup_testing_defaults(environ)
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        seen["status"], seen["headers"] = status, dict(headers)

    body = b"".join(DeprecationWSGIMiddleware(wsgi_app, [ROUTE], now=lambda: now)(
        environ, start_response))
    return seen["status"], seen["headers"], body


def test_wsgi_middleware_adds_the_same_headers_and_answers_410() -> None:
    status, headers, body = call_wsgi("/api/v1/documents/5/ocr-text",
                                      datetime(2025, 6, 1, tzinfo=UTC))
    assert (status, body) == ("200 OK", b"ok")
    assert headers["Deprecation"] == f"@{int(DEPRECATED.timestamp())}"
    assert headers["Sunset"] == "Mon, 01 Dec 2025 00:00:00 GMT"
    status, headers, body = call_wsgi("/api/v1/documents/5/ocr-text",
                                      datetime(2026, 1, 1, tzinfo=UTC))
    assert status == "410 Gone"
    assert b"/api/v2/documents/5/extracted-text" in body


VERSIONS = ApiVersions(supported=("1.0", "2.0"), default="2.0")


def negotiating_client() -> TestClient:
    app = Starlette(routes=[Route("/{rest:path}", echo)])
    return TestClient(ApiVersionMiddleware(app, VERSIONS, prefixes=("/api/",)))


def test_the_version_header_is_negotiated() -> None:
    client = negotiating_client()
    assert client.get("/api/doc").json()["version"] == "2.0"
    answer = client.get("/api/doc", headers={"X-API-Version": "1.0"})
    assert answer.json()["version"] == "1.0"
    assert answer.headers["x-api-version"] == "1.0"


def test_an_unknown_version_is_400_naming_the_supported_ones() -> None:
    answer = negotiating_client().get("/api/doc", headers={"X-API-Version": "3"})
    assert answer.status_code == 400
    assert answer.json() == {"error": "unsupported_api_version", "supported": ["1.0", "2.0"],
                             "message": "unsupported API version '3': send X-API-Version "
                                        "with one of 1.0, 2.0"}


def test_paths_outside_the_prefixes_are_not_negotiated() -> None:
    answer = negotiating_client().get("/health", headers={"X-API-Version": "3"})
    assert answer.status_code == 200


def test_a_default_that_is_not_supported_is_refused() -> None:
    with pytest.raises(Exception, match="default API version '3'"):
        ApiVersions(supported=("1",), default="3")


def test_payload_view_moves_documents_both_ways() -> None:
    reg = Registry()
    reg.add("k", "0", "1", lambda d: {"b": d.get("a")})
    reg.add("k", "1", "0", lambda d: {"a": d.get("b")}, down=True)
    view = PayloadView("k", {"v1": "0", "v2": "1"}, registry=reg)
    assert view.render({"a": 1}, "v2") == {"version": "1", "b": 1}
    assert view.render({"version": "1", "b": 2}, "v1") == {"a": 2}
    assert view.render(None, "v1") is None
    with pytest.raises(UnsupportedApiVersion):
        view.render({"a": 1}, "v9")
