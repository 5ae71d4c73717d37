"""Dashboard benchmark: the page and ``/api/history`` with 10,000 history rows.

``umbau dashboard`` runs as a real server (uvicorn, a subprocess) on the Etsy example at
1.0.0 with ``--rows`` rows in ``umbau_history``; each URL is fetched ``--repeat`` times over
HTTP on loopback and the median and p95 are printed. Target (issue 16): under 100 ms.
The baseline beside it is a plain ``SELECT … ORDER BY id DESC LIMIT 50`` of the same page
from the same process, the floor for a history page.

    python -m benchmarks.dashboard [--rows 10000] [--repeat 50] [--database-url URL]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import psycopg

from benchmarks._common import machine, table, write_results
from benchmarks.backfill.run import _libpq, server
from umbau.commands.migrate import upgrade
from umbau.postgres.scratch import database_url, recreate_database
from umbau.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
ETSY = ROOT / "examples" / "etsy_sevdesk"
DATABASE = "umbau_bench_dashboard"


def fill(url: str, rows: int) -> None:
    settings = load_settings(cwd=ETSY, environ={}, flags={"database_url": url})
    upgrade(settings, "3f1c2a9b7d10", backup="never")
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        conn.execute("""INSERT INTO umbau_history (revision, direction, message, started_at,
                            finished_at, duration_ms, attempts, outcome, error, umbau_version,
                            db_user)
                        SELECT md5(g::text), CASE WHEN g %% 2 = 0 THEN 'upgrade'
                               ELSE 'downgrade' END, 'revision ' || g, now(), now(),
                               g %% 900, 1, CASE WHEN g %% 97 = 0 THEN 'failed'
                               ELSE 'success' END, NULL, '0.1.0', 'bench'
                        FROM generate_series(1, %s) g""", (rows - 1,))


def start(url: str, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UMBAU_")}
    return subprocess.Popen([sys.executable, "-m", "umbau", "--database-url", url, "dashboard",
                             "--port", str(port)], cwd=ETSY, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fetch_times(url: str, repeat: int) -> list[float]:
    urllib.request.urlopen(url).read()  # warm up (imports, first connection)
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        with urllib.request.urlopen(url) as answer:
            answer.read()
        times.append(time.perf_counter() - began)
    return times


def select_times(url: str, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        with psycopg.connect(_libpq(url)) as conn:
            conn.execute("SELECT count(*) FROM umbau_history").fetchone()
            conn.execute("SELECT * FROM umbau_history ORDER BY id DESC LIMIT 50").fetchall()
        times.append(time.perf_counter() - began)
    return times


def wait(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit("umbau dashboard did not start")


def ms(values: list[float], q: float) -> str:
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000:.1f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dashboard", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--database-url", help="a server's maintenance database")
    args, _ = parser.parse_known_args(argv)
    with server(args.database_url) as server_url:
        recreate_database(server_url, DATABASE)
        url = database_url(server_url, DATABASE)
        fill(url, args.rows)
        port = free_port()
        process = start(url, port)
        try:
            wait(port, process)
            base = f"http://127.0.0.1:{port}"
            results = {"page /": fetch_times(base + "/", args.repeat),
                       "/api/history": fetch_times(base + "/api/history", args.repeat),
                       "/api/history?page=150": fetch_times(base + "/api/history?page=150",
                                                            args.repeat),
                       "baseline: SELECT page": select_times(url, args.repeat)}
        finally:
            process.terminate()
            process.wait(timeout=20)
    floor = statistics.median(results["baseline: SELECT page"])
    rows = [[name, f"{statistics.median(t) * 1000:.1f}", ms(t, 0.95),
             f"{statistics.median(t) / floor:.2f}"] for name, t in results.items()]
    print(f"{args.rows} history rows, {args.repeat} requests each")
    print(table(rows, ["", "median ms", "p95 ms", "ratio to SELECT"]))
    worst = max(statistics.median(results[k]) for k in ("page /", "/api/history"))
    print(f"target: page and /api/history < 100 ms: {'met' if worst < 0.1 else 'MISSED'}")
    path = write_results("dashboard", {"machine": machine(), "rows": args.rows,
                                       "results_s": results})
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
