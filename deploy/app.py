"""The application stand-in of the deploy recipe: ``/health`` (liveness: the process
answers) and ``/health/ready`` (readiness: :func:`umbau.readiness.wsgi_app`, 200 when the
schema is one this version accepts, with only post-deploy revisions pending; 503 with the
reason otherwise), served with the standard library's wsgiref.

Your application mounts ``umbau.readiness.asgi_app(settings)`` or ``wsgi_app(settings)``
the same way (docs/deploy.md). Run in the image's /app, where umbau.toml is:

    python /app/deploy_app.py --port 8000
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from umbau.settings import load_settings


class QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if str(code) != "200":  # probes every few seconds: log only what is not fine
            super().log_request(code, size)


def make_app(environ: dict[str, str]) -> Callable[..., Iterable[bytes]]:
    from umbau.readiness import wsgi_app

    ready = wsgi_app(load_settings(environ=environ), ttl=5.0)

    def app(env: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if env.get("PATH_INFO") == "/health":
            start_response("200 OK", [("Content-Type", "application/json")])
            return [b'{"status": "ok"}']
        return ready(env, start_response)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="liveness and readiness endpoints")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    with make_server(args.host, args.port, make_app(dict(os.environ)),
                     handler_class=QuietHandler) as server:
        server.serve_forever()


if __name__ == "__main__":
    main()
