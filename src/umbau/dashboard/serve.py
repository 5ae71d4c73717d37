"""Serving the dashboard: bind checks and uvicorn."""

from __future__ import annotations

import contextlib
import ipaddress
import signal
from collections.abc import Callable
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


def check_port(options: DashboardOptions) -> None:
    """Refuse (:class:`~umbau.errors.UsageError`) an address this machine cannot listen
    on: a port in use, or a host that is not one of its addresses."""
    import socket

    family = socket.AF_INET6 if ":" in options.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((options.host.strip("[]"), options.port))
        except OSError as exc:
            raise UsageError(f"cannot listen on {options.host}:{options.port} "
                             f"({exc.strerror}): choose another --port or --host") from exc


@dataclass(frozen=True)
class DashboardRun:
    """A finished ``umbau dashboard``: where it served and what stopped it
    (``"SIGTERM"`` or ``"SIGINT"``)."""

    url: str
    stopped_by: str | None

    def as_dict(self) -> dict[str, str | None]:
        return {"url": self.url, "stopped_by": self.stopped_by}


def serve(settings: Settings, options: DashboardOptions,
          on_ready: Callable[[str], None] | None = None) -> DashboardRun:
    """Serve the dashboard until SIGINT or SIGTERM (blocks); ``on_ready`` gets its URL
    once the address is known to be free. Either signal is a normal stop: uvicorn
    finishes the requests in flight, and this returns. Raises UsageError for a bad
    bind or a port in use, :class:`~umbau.errors.UmbauError` when the ``dashboard``
    extra is missing."""
    check_bind(options)
    check_port(options)
    try:
        import uvicorn

        from umbau.dashboard.app import create_app
    except ImportError as exc:
        raise UmbauError("the dashboard needs Starlette and uvicorn: "
                         "pip install 'umbau[dashboard]'") from exc
    app = create_app(settings, token=options.token)
    url = f"http://{options.host}:{options.port}/"
    if on_ready is not None:
        on_ready(url)
    server = uvicorn.Server(uvicorn.Config(app, host=options.host, port=options.port,
                                           log_level="warning"))
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then raises the signal again for
    # the handler it found (the CLI's, which turns it into an interrupt)
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    captured = getattr(server, "_captured_signals", [])
    names = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM"}
    return DashboardRun(url, names.get(captured[-1]) if captured else None)
