"""A stand-in for the application's ``/health`` endpoint (standard library http.server).

Started and stopped by ``service.py`` (the release plan's ``command`` steps). At start it
reads the env file the way the application does; each ``GET /health`` answers

- 200 ``{"status": "ok", "version", "revision", "tables"}`` when the keys this version
  needs are in the env file and the database (``DATABASE_URL`` of the env file) is at a
  schema this version can use (``checks.REQUIRED_TABLES``), with its Alembic revision;
- 503 ``{"status": "misconfigured" | "database", "error"}`` otherwise.

``checks.py`` beside this file says what each version needs.
"""

from __future__ import annotations

import argparse
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import checks  # noqa: E402  (the application's own requirements, beside this file)

from umbau.release.envfile import read_env  # noqa: E402


def libpq_url(url: str) -> str:
    """A SQLAlchemy URL (``postgresql+psycopg://``) as libpq reads it."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme.split('+')[0]}{sep}{rest}"


def database_state(url: str, tables: tuple[str, ...]) -> dict[str, Any]:
    """The database's Alembic revision and which of ``tables`` exist (raises on errors)."""
    import psycopg

    with psycopg.connect(libpq_url(url), connect_timeout=3) as conn:
        revision = conn.execute("SELECT string_agg(version_num, ',') FROM alembic_version"
                                ).fetchone()
        present = {name: conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)
                                      ).fetchone()[0]  # type: ignore[index]
                   for name in tables}
    return {"revision": revision[0] if revision else None, "tables": present}


def answer(version: str, env: dict[str, str]) -> tuple[int, dict[str, Any]]:
    missing = [k for k in checks.REQUIRED_ENV[version] if not env.get(k)]
    if missing:
        return 503, {"status": "misconfigured", "version": version,
                     "error": f"missing in the env file: {', '.join(missing)}"}
    tables = checks.REQUIRED_TABLES[version]
    try:
        state = database_state(env["DATABASE_URL"], tables)
    except Exception as exc:  # any failure is an unhealthy answer, not a crash
        return 503, {"status": "database", "version": version,
                     "error": f"{type(exc).__name__}: {exc}"}
    absent = [name for name, there in state["tables"].items() if not there]
    if absent:
        return 503, {"status": "database", "version": version, **state,
                     "error": f"tables {version} needs are missing: {', '.join(absent)}"}
    return 200, {"status": "ok", "version": version, **state}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", required=True, choices=sorted(checks.REQUIRED_ENV))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--env-file", type=Path, required=True)
    args = parser.parse_args(argv)
    env = read_env(args.env_file)  # read once at start, as the application does
    version: str = args.version

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/health":
                status, body = 404, {"error": "not found"}
            else:
                status, body = answer(version, env)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            sys.stderr.write(f"{self.address_string()} {format % args}\n")

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"{checks.APP} {version}: /health on 127.0.0.1:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
