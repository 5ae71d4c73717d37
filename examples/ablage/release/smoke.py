"""The release's smoke test: the running service and the database, as a user would find
them after the upgrade (guide 003's ``pytest tests/smoke/``, standard library only).

    python release/smoke.py --version 1.1.0

Checks that ``/health`` (port ``APP_PORT``, default 8000) answers 200 with that version,
then the application's own checks (``checks.smoke``: the data the release must leave).
Exit 0 when all pass, 1 naming each failure. ``UMBAU_DEMO_FAIL_SMOKE=1`` fails it on
purpose after the checks: ``umbau demo --release --fail-smoke`` uses it to show the
automatic rollback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import checks  # noqa: E402
from health_server import libpq_url  # noqa: E402

from umbau.release.envfile import read_env  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="smoke test of the example's release")
    parser.add_argument("--version", required=True)
    args = parser.parse_args(argv)
    failures: list[str] = []
    url = f"http://127.0.0.1:{os.environ.get('APP_PORT', '8000')}/health"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            health = json.load(response)
        if health.get("version") != args.version:
            failures.append(f"/health says version {health.get('version')}, "
                            f"expected {args.version}")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        failures.append(f"/health: {exc}")
    env = read_env(HERE.parent / ".env")
    import psycopg

    with psycopg.connect(libpq_url(env["DATABASE_URL"]), connect_timeout=5) as conn:
        failures += checks.smoke(conn, env, args.version)
    for failure in failures:
        print(f"FAIL {failure}")
    if os.environ.get("UMBAU_DEMO_FAIL_SMOKE") == "1":
        failures.append("UMBAU_DEMO_FAIL_SMOKE=1")
        print("FAIL on purpose: UMBAU_DEMO_FAIL_SMOKE=1 (the demo's injected failure)")
    if not failures:
        print(f"smoke test of {checks.APP} {args.version}: all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
