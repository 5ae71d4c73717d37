"""The dashboard's Starlette application: one page and the JSON API under it.

Read-only: every route answers GET (or HEAD) and calls only reading commands. With a
token, every request must carry it (``Authorization: Bearer …``, or ``?token=…`` once,
which sets a same-site, HTTP-only cookie for the page's own requests); tokens are
compared in constant time (:func:`hmac.compare_digest`).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from umbau.dashboard.data import PAGE_SIZE, Sources
from umbau.dashboard.page import PAGE
from umbau.settings import Settings

COOKIE = "umbau_dashboard_token"


def _int(request: Request, name: str, default: int) -> int:
    try:
        return int(request.query_params.get(name, default))
    except ValueError:
        return default


class TokenGuard(BaseHTTPMiddleware):
    """Refuses (401) requests without the dashboard token, when one is set."""

    def __init__(self, app: Any, token: str | None) -> None:
        super().__init__(app)
        self.token = token

    async def dispatch(self, request: Request,
                       call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if request.method not in ("GET", "HEAD"):
            return JSONResponse({"error": "the dashboard is read-only"}, status_code=405)
        if self.token is None:
            return await call_next(request)
        offered = _offered(request)
        if offered is None or not hmac.compare_digest(offered.encode(), self.token.encode()):
            return JSONResponse({"error": "a token is needed: open the page with ?token=…"},
                                status_code=401)
        response = await call_next(request)
        if request.query_params.get("token"):
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="strict")
        return response


def _offered(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.query_params.get("token") or request.cookies.get(COOKIE)


def _import_sources() -> None:
    """Import what the sources need before requests come in: the CLI imports lazily, and
    two request threads importing SQLAlchemy's modules at once can meet a partially
    initialized module ("most likely due to a circular import")."""
    import importlib

    for module in ("sqlalchemy.dialects.postgresql.psycopg", "umbau.commands.status",
                   "umbau.commands.lint", "umbau.backfill", "umbau.backup.prune",
                   "umbau.postgres.history", "umbau.postgres.connect", "umbau.alembic_bridge"):
        importlib.import_module(module)


def create_app(settings: Settings, *, token: str | None = None,
               sources: Sources | None = None) -> Starlette:
    """The dashboard for ``settings``' project and database.

    ``token``: required from every request when given (see the module docstring).
    """
    _import_sources()
    data = sources or Sources(settings)

    def api(fetch: Callable[[Request], dict[str, Any]]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> JSONResponse:
            from starlette.concurrency import run_in_threadpool

            return JSONResponse(await run_in_threadpool(fetch, request),
                                headers={"Cache-Control": "no-store"})
        return endpoint

    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse(PAGE, headers={"Cache-Control": "no-store"})

    routes = [
        Route("/", page),
        Route("/api/status", api(lambda r: data.status())),
        Route("/api/history", api(lambda r: data.history(
            _int(r, "page", 1), _int(r, "per_page", PAGE_SIZE)))),
        Route("/api/lint", api(lambda r: data.lint())),
        Route("/api/backfills", api(lambda r: data.backfills())),
        Route("/api/backups", api(lambda r: data.backups())),
        Route("/api/releases", api(lambda r: data.releases())),
        Route("/api/fleet", api(lambda r: data.fleet())),
    ]
    return Starlette(routes=routes, middleware=[Middleware(TokenGuard, token=token)])
