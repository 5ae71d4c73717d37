"""Backup's fixed cost: ``umbau backup`` against plain ``pg_dump -Fc`` on a small database
(about 2 MB), where nearly all of umbau's time is what it adds to every backup (Python
start, imports, settings, the session, catalog queries, finding pg_dump, the manifest).

Optionally a second umbau source tree (``--before SRC``, e.g. an export of an older
commit's ``src``) runs in the same loop, so before and after are measured side by side
under the same load. All runs alternate in order; medians and per-repetition ratios.

``python -m benchmarks.backup_fixed [--database-url URL] [--repeat 15] [--before SRC]``;
without a URL the embedded pgserver runs in a temporary folder.
"""

from __future__ import annotations

import argparse
import compileall
import re
import shutil
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from benchmarks._common import (
    Samples,
    clean_environ,
    executable,
    machine,
    paired_ratio,
    run_timed,
    table,
    write_results,
)
from umbau.backup.binaries import find_tool
from umbau.postgres import clients, scratch
from umbau.postgres import dumpcatalog as catalog
from umbau.postgres.connect import connect

DATABASE = "umbau_bench_backup_fixed"
SCHEMA = """
DROP TABLE IF EXISTS customers, orders, alembic_version;
CREATE TABLE customers (id int PRIMARY KEY, email text NOT NULL, name text);
CREATE TABLE orders (id int PRIMARY KEY, customer_id int REFERENCES customers,
                     total_cents int NOT NULL);
CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY);
INSERT INTO customers SELECT g, 'k' || g || '@example.org', md5(g::text)
  FROM generate_series(1, 10000) g;
INSERT INTO orders SELECT g, 1 + g % 10000, g * 7 FROM generate_series(1, 20000) g;
INSERT INTO alembic_version VALUES ('a1b2c3d4e5f6');
"""


def _database(server_url: str) -> str:
    scratch.recreate_database(server_url, DATABASE)
    url = scratch.database_url(server_url, DATABASE)
    with connect(url) as conn:
        conn.connection.driver_connection.execute(SCHEMA)  # type: ignore[union-attr]
        conn.commit()
    return url


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.backup_fixed",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="server to use (default: embedded pgserver)")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--before", type=Path, help="another umbau src folder to compare")
    args, _ = parser.parse_known_args(argv)
    work = Path(tempfile.mkdtemp(prefix="umbau-bench-backup-fixed-"))
    server = None
    try:
        if args.database_url:
            server_url = args.database_url
        else:
            from umbau.postgres import embedded

            server = embedded.start(work / "pgdata")
            server_url = server.url("postgres")
        url = _database(server_url)
        try:
            return _measure(url, work, args.repeat, args.before)
        finally:
            scratch.drop_database(server_url, DATABASE)
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


def _measure(url: str, work: Path, repeat: int, before: Path | None) -> int:
    with connect(url) as conn:
        major = catalog.server_major(conn)
    pg_dump = find_tool("pg_dump", major, path_env=clean_environ().get("PATH"))
    conninfo, pg_env = clients.conninfo(url)
    env = clean_environ(**pg_env, UMBAU_PG_BIN=str(pg_dump.path.parent))
    out = work / "out"
    plain = Samples("pg_dump -Fc")
    ours = Samples("umbau backup")
    umbau_cmd = [executable("umbau"), "--database-url", url, "backup", "-q", "--dir"]
    cases: list[tuple[Samples, list[str], dict[str, str]]] = [
        (plain, [str(pg_dump.path), "-Fc", "-f", str(out / "plain.dump"), "--dbname",
                 conninfo], env),
        (ours, [*umbau_cmd, str(out / "umbau")], env),
    ]
    if before is not None:
        # Bytecode, as an installed package has it (templates/ holds no Python).
        compileall.compile_dir(str(before), quiet=1, rx=re.compile(r"templates"))
        old = Samples("umbau backup (before)")
        cases.append((old, [sys.executable, "-m", "umbau", "--database-url", url, "backup",
                            "-q", "--dir", str(out / "before")],
                      {**env, "PYTHONPATH": str(before)}))
    for i in range(repeat):
        for samples, cmd, run_env in (cases if i % 2 == 0 else list(reversed(cases))):
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            samples.add(*run_timed(cmd, cwd=work, env=run_env))
    # CPU seconds (user + system, the process and its waited-for children, so umbau's
    # include its pg_dump's) are less at the mercy of other load than wall-clock ones.
    rows = [[s.name, f"{s.median:.3f}", f"{s.median - plain.median:.3f}",
             f"{paired_ratio(s, plain):.2f}", f"{s.cpu_median:.3f}",
             f"{s.cpu_median - plain.cpu_median:.3f}"] for s, _, _ in cases]
    print(f"pg_dump {pg_dump.version}, {repeat} repetitions (medians, seconds)")
    print(table(rows, ["run", "wall", "wall - pg_dump", "ratio to pg_dump", "CPU",
                       "CPU - pg_dump"]))
    fixed = {s.name: statistics.median(a - b for a, b in zip(s.seconds, plain.seconds,
                                                             strict=True))
             for s, _, _ in cases[1:]}
    for name, seconds in fixed.items():
        print(f"{name}: fixed cost (paired median) {seconds:.3f}s")
    path = write_results("backup_fixed", {
        "machine": machine(), "pg_dump": pg_dump.version, "repeat": repeat,
        "runs": {s.name: s.as_dict() for s, _, _ in cases}, "fixed_cost_s": fixed,
    })
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
