"""umbau backup against plain pg_dump with the same options, on a generated database of
at least 1 GB: custom format, and directory format with --jobs 2; plus the time of
``umbau backup verify --restore-test``.

Both run as subprocesses with the same pg_dump binary (the one umbau picks), in
alternating order, one after the other on the same server. Target: umbau's overhead
(manifest, row counts, sha256, Python start) at most 10% (ratio <= 1.10).

``python -m benchmarks.backup [--database-url URL] [--size-gb 1.0] [--repeat 3]``;
without a URL the embedded pgserver runs in a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import text

from benchmarks._common import (
    Samples,
    clean_environ,
    executable,
    machine,
    paired_ratio,
    ratio,
    run_timed,
    table,
    write_results,
)
from umbau.backup.binaries import find_tool
from umbau.postgres import clients, scratch
from umbau.postgres import dumpcatalog as catalog
from umbau.postgres.connect import connect

DATABASE = "umbau_bench_backup"
TARGET_RATIO = 1.10
SCHEMA = """
CREATE TABLE IF NOT EXISTS customers (id bigint PRIMARY KEY, email text NOT NULL,
    name text NOT NULL, country char(2) NOT NULL, created_at timestamptz NOT NULL);
CREATE TABLE IF NOT EXISTS orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL,
    status text NOT NULL, total_cents integer NOT NULL, currency char(3) NOT NULL,
    note text, created_at timestamptz NOT NULL);
CREATE TABLE IF NOT EXISTS order_items (id bigint PRIMARY KEY, order_id bigint NOT NULL,
    sku text NOT NULL, quantity integer NOT NULL, price_cents integer NOT NULL);
"""
CHUNK = 1_000_000
FILL = [
    """INSERT INTO customers SELECT g, 'kunde' || g || '@example.org',
           'Name ' || md5(g::text), (ARRAY['DE','AT','CH','US'])[1 + g % 4],
           '2024-01-01'::timestamptz + g * interval '1 minute'
       FROM generate_series(:lo, :hi) g""",
    """INSERT INTO orders SELECT g, 1 + g % 250000,
           (ARRAY['paid','shipped','completed'])[1 + g % 3], (g * 37) % 100000, 'EUR',
           CASE WHEN g % 4 = 0 THEN md5(g::text) || md5((g+1)::text) END,
           '2024-01-01'::timestamptz + g * interval '10 seconds'
       FROM generate_series(:lo, :hi) g""",
    """INSERT INTO order_items SELECT g, 1 + g / 2, 'SKU-' || (g % 5000), 1 + g % 3,
           (g * 13) % 20000 FROM generate_series(:lo, :hi) g""",
]


def generate(server_url: str, size_bytes: int) -> str:
    """The benchmark database, filled until it is at least ``size_bytes`` (reused if so)."""
    with connect(server_url, autocommit=True) as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :d"),
                              {"d": DATABASE}).scalar()
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{DATABASE}"'))
    url = scratch.database_url(server_url, DATABASE)
    with connect(url, autocommit=True) as conn:
        conn.connection.driver_connection.execute(SCHEMA)
        done = conn.execute(text("SELECT coalesce(max(id), 0) FROM order_items")).scalar()
        while catalog.database_size(conn) < size_bytes:
            lo, hi = done + 1, done + CHUNK
            for sql in FILL:
                conn.execute(text(sql), {"lo": lo, "hi": hi})
            done = hi
            print(f"  generated {done:,} rows per table, "
                  f"{catalog.database_size(conn) / 1024**3:.2f} GiB", flush=True)
        conn.execute(text("VACUUM ANALYZE"))
        return url


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.backup", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="server to use (default: embedded pgserver)")
    parser.add_argument("--size-gb", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    args, _ = parser.parse_known_args(argv)
    work = Path(tempfile.mkdtemp(prefix="umbau-bench-backup-"))
    server = None
    try:
        if args.database_url:
            server_url = args.database_url
        else:
            from umbau.postgres import embedded

            server = embedded.start(work / "pgdata")
            server_url = server.url("postgres")
        print(f"generating >= {args.size_gb:g} GB …", flush=True)
        url = generate(server_url, int(args.size_gb * 1000**3))
        return _measure(url, work, args.repeat)
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


def _measure(url: str, work: Path, repeat: int) -> int:
    with connect(url) as conn:
        size = catalog.database_size(conn)
        major = catalog.server_major(conn)
    pg_dump = find_tool("pg_dump", major, path_env=clean_environ().get("PATH"))
    conninfo, pg_env = clients.conninfo(url)
    env = clean_environ(**pg_env, UMBAU_PG_BIN=str(pg_dump.path.parent))
    umbau = executable("umbau")
    out = work / "out"
    cases = {
        "custom": (["--dump-format", "custom"], ["-Fc"]),
        "directory -j2": (["--dump-format", "directory", "--jobs", "2"], ["-Fd", "-j", "2"]),
    }
    samples: dict[str, tuple[Samples, Samples]] = {}
    # umbau's own share, measured inside each umbau run: the whole process against the
    # pg_dump it ran. Load from other processes hits both parts alike.
    overhead: dict[str, list[float]] = {name: [] for name in cases}
    for name, (umbau_args, dump_args) in cases.items():
        ours, plain = Samples(f"umbau backup {name}"), Samples(f"pg_dump {name}")
        for i in range(repeat):
            runs = [(plain, [str(pg_dump.path), *dump_args, "-f", str(out / "plain"),
                             "--dbname", conninfo]),
                    (ours, [umbau, "--database-url", url, "backup", *umbau_args, "-q",
                            "--dir", str(out / "umbau")])]
            for target, cmd in (runs if i % 2 == 0 else list(reversed(runs))):
                shutil.rmtree(out, ignore_errors=True)
                (out / "umbau").mkdir(parents=True)
                seconds, cpu = run_timed(cmd, cwd=work, env=env)
                target.add(seconds, cpu)
                if target is ours:
                    inner = _manifest(out / "umbau")["timings"]["pg_dump_s"]
                    overhead[name].append((seconds - inner) / inner)
            print(f"  {name} #{i + 1}: pg_dump {plain.seconds[-1]:.1f}s, "
                  f"umbau {ours.seconds[-1]:.1f}s", flush=True)
        samples[name] = (ours, plain)
    restore_s, verify_s = _restore_test(umbau, url, env, work, out)
    rows = [[name, f"{plain.median:.2f}", f"{ours.median:.2f}",
             f"{ratio(ours, plain):.3f}", f"{paired_ratio(ours, plain):.3f}",
             f"{100 * statistics.median(overhead[name]):.1f}%"]
            for name, (ours, plain) in samples.items()]
    print(f"database {size / 1024**3:.2f} GiB, pg_dump {pg_dump.version}, "
          f"{repeat} repetitions (medians, seconds)")
    print(table(rows, ["format", "pg_dump", "umbau backup", "ratio", "paired ratio",
                       "umbau's own share"]))
    print(f"umbau backup verify --restore-test: {verify_s:.1f}s in all, of which "
          f"pg_restore into the scratch database {restore_s:.1f}s")
    worst = max(paired_ratio(o, p) for o, p in samples.values())
    share = max(statistics.median(v) for v in overhead.values())
    print(f"target: ratio <= {TARGET_RATIO}: side by side "
          f"{'met' if worst <= TARGET_RATIO else 'MISSED'} (worst paired ratio {worst:.3f}); "
          f"umbau's own share {'met' if 1 + share <= TARGET_RATIO else 'MISSED'} "
          f"(worst {100 * share:.1f}%)")
    path = write_results("backup", {
        "machine": machine(), "database_bytes": size, "pg_dump": pg_dump.version,
        "repeat": repeat,
        "cases": {n: {"umbau": o.as_dict(), "pg_dump": p.as_dict(),
                      "ratio": ratio(o, p), "paired_ratio": paired_ratio(o, p),
                      "own_share": overhead[n]}
                  for n, (o, p) in samples.items()},
        "restore_test": {"verify_s": verify_s, "restore_s": restore_s},
    })
    print(f"results: {path}")
    return 0


def _manifest(folder: Path) -> dict[str, Any]:
    [path] = folder.glob("*.json")
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def _restore_test(umbau: str, url: str, env: dict[str, str], work: Path,
                  out: Path) -> tuple[float, float]:
    """(pg_restore seconds inside the restore test, whole verify seconds)."""
    shutil.rmtree(out, ignore_errors=True)
    run_timed([umbau, "--database-url", url, "backup", "-q", "--dir", str(out)], cwd=work,
              env=env)
    dump = next(out.glob("*.dump"))
    began = time.perf_counter()
    done = subprocess.run([umbau, "--database-url", url, "backup", "verify", str(dump),
                           "--restore-test", "-q", "--format", "json"], cwd=work, env=env,
                          capture_output=True, text=True, check=False)
    verify_s = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"verify failed:\n{done.stdout}\n{done.stderr}")
    return json.loads(done.stdout)["restore_test"]["duration_s"], verify_s


if __name__ == "__main__":
    raise SystemExit(main())
