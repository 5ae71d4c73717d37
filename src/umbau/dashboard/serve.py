"""Serving the dashboard: bind checks and uvicorn."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from umbau.errors import UmbauError, UsageError
from umbau.settings import Settings


@dataclass(frozen=True)
class DashboardOptions:
    """Where to listen (``host``, ``port``) and the token requests must carry (or None)."""

    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = None


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(options: DashboardOptions) -> None:
    """Refuse to serve beyond this machine without a token, and tokens too short to keep
    anyone out. Raises :class:`~umbau.errors.UsageError` (exit 2)."""
    if not 0 < options.port < 65536:
        raise UsageError(f"--port {options.port} is not a TCP port: use 1-65535")
    if options.token is not None and len(options.token) < 16:
        raise UsageError("the dashboard token is shorter than 16 characters: use a long "
                         "random one, e.g. `python -c 'import secrets; print(secrets."
                         "token_urlsafe())'`")
    if not is_loopback(options.host) and options.token is None:
        raise UsageError(f"--host {options.host} serves the dashboard beyond this machine: "
                         "set --token or UMBAU_DASHBOARD_TOKEN (or bind 127.0.0.1)")


def serve(settings: Settings, options: DashboardOptions) -> None:
    """Serve the dashboard until interrupted (blocks). Raises UsageError for a bad bind,
    :class:`~umbau.errors.UmbauError` when the ``dashboard`` extra is missing."""
    check_bind(options)
    try:
        import uvicorn

        from umbau.dashboard.app import create_app
    except ImportError as exc:
        raise UmbauError("the dashboard needs Starlette and uvicorn: "
                         "pip install 'umbau[dashboard]'") from exc
    app = create_app(settings, token=options.token)
    uvicorn.run(app, host=options.host, port=options.port, log_level="warning")
