"""Backfill benchmark: guide 003's OCR JSON reshape of ``documents``, in one run.

(a) one set-based UPDATE (the limit); (b) the guide's batch script as written on a
sample; (c) umbau's SQL backfill; (d) umbau's Python-transform backfill; (e) writers
updating random rows of the same table during (a) and (c), with their p99 and max
latency. Every measurement starts from a fresh copy of the same generated table.

    python -m benchmarks.backfill [--rows 2000000] [--sample 20000] [--repeat 3]
        [--workers 1] [--python-workers 2] [--writers 2] [--database-url URL]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import threading
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from benchmarks._common import libpq as _libpq
from benchmarks._common import machine, table, write_results
from benchmarks._common import server as common_server
from benchmarks.backfill import guide_script
from benchmarks.backfill.ocr import NEEDS_RESHAPE, RESHAPED, SQL_RESHAPE, reshape_batch
from umbau.backfill import Backfill, run_backfill
from umbau.postgres.connect import normalize_url
from umbau.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DATABASE = "umbau_bench_backfill"

SEED = """
CREATE TABLE documents_seed AS
SELECT g AS id, 'document ' || g AS title,
       jsonb_build_object(
           'content', repeat('lorem ipsum ', 5) || g, 'score', round((g % 100) / 100.0, 2),
           'engine', CASE WHEN g % 3 = 0 THEN 'tesseract' ELSE 'easyocr' END,
           'lang', 'de', 'page_count', 1 + g % 4, 'duration', round((g % 50) / 10.0, 1),
           'segments', jsonb_build_array(
               jsonb_build_object('text', 'head ' || g, 'bbox', jsonb_build_array(0, 0, 100, 20),
                                  'conf', 0.9, 'type', 'title'),
               jsonb_build_object('text', 'body ' || g, 'bbox', jsonb_build_array(0, 30, 100, 90),
                                  'conf', 0.8))) AS ocr_result,
       true AS needs_migration, now() AS updated_at, 0 AS hits
FROM generate_series(1, {rows}) AS g
"""


def server(database_url: str | None) -> AbstractContextManager[str]:
    """The maintenance-database URL of the named server, or of the embedded one."""
    return common_server(database_url, "pg")


def fresh_database(server_url: str, rows: int) -> str:
    with psycopg.connect(_libpq(server_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DATABASE}"')
    url = normalize_url(server_url).set(database=DATABASE).render_as_string(hide_password=False)
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        conn.execute(SEED.format(rows=int(rows)))
    return url


def copy_table(url: str, name: str, rows: int | None = None) -> None:
    """A fresh ``name`` from the seed (the first ``rows`` rows), with its primary key."""
    limit = f"WHERE id <= {int(rows)}" if rows else ""
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {name}")
        conn.execute(f"CREATE TABLE {name} AS SELECT * FROM documents_seed {limit}")
        conn.execute(f"ALTER TABLE {name} ADD PRIMARY KEY (id)")
        conn.execute(f"VACUUM ANALYZE {name}")
        conn.execute("CHECKPOINT")


@dataclass
class Writers:
    """Threads that update random rows (autocommit) and time every statement."""

    url: str
    table: str
    rows: int
    count: int
    latencies: list[float] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Writers:
        for i in range(self.count):
            thread = threading.Thread(target=self._write, args=(i,), daemon=True)
            thread.start()
            self.threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()

    def _write(self, seed: int) -> None:
        import random

        rng = random.Random(seed)
        with psycopg.connect(_libpq(self.url), autocommit=True) as conn:
            while not self.stop.is_set():
                key = rng.randint(1, self.rows)
                began = time.perf_counter()
                conn.execute(f"UPDATE {self.table} SET hits = hits + 1, updated_at = now() "
                             "WHERE id = %s", (key,))
                self.latencies.append(time.perf_counter() - began)
                time.sleep(0.01)

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies)
        if not lat:
            return {"writes": 0}
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        return {"writes": len(lat), "p50_ms": round(statistics.median(lat) * 1000, 1),
                "p99_ms": round(p99 * 1000, 1), "max_ms": round(lat[-1] * 1000, 1)}


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median rate (the upper median of an even count)."""
    ordered = sorted(runs, key=lambda r: r["rows_per_s"])
    return {**ordered[len(ordered) // 2], "all_rows_per_s": [round(r["rows_per_s"]) for r in runs]}


def count(url: str, query: str) -> int:
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        row = conn.execute(query).fetchone()
        return int(row[0]) if row else 0


def set_based(url: str, rows: int, writers: int) -> dict[str, Any]:
    copy_table(url, "documents", rows)
    with Writers(url, "documents", rows, writers) as load, \
            psycopg.connect(_libpq(url), autocommit=True) as conn:
        time.sleep(0.5)  # writers warm up before the statement starts
        began = time.perf_counter()
        changed = conn.execute(f"UPDATE documents SET ocr_result = {SQL_RESHAPE} "
                               f"WHERE {NEEDS_RESHAPE}").rowcount
        seconds = time.perf_counter() - began
        time.sleep(0.5)
    return {"rows": changed, "seconds": seconds, "rows_per_s": changed / seconds,
            "writers": load.summary(), "left": count(url, f"SELECT count(*) FROM documents "
                                                        f"WHERE {NEEDS_RESHAPE}")}


def guide(url: str, sample: int) -> dict[str, Any]:
    copy_table(url, "documents_sample", sample)
    logging.getLogger("guide_script").setLevel(logging.WARNING)
    began = time.perf_counter()
    believed = guide_script.migrate_documents(url, "documents_sample")
    seconds = time.perf_counter() - began
    migrated = count(url, "SELECT count(*) FROM documents_sample WHERE NOT needs_migration")
    return {"rows": sample, "seconds": seconds, "rows_per_s": migrated / seconds,
            "script_reported": believed, "migrated": migrated, "left": sample - migrated}


def umbau(url: str, rows: int, writers: int, workers: int, kind: str) -> dict[str, Any]:
    copy_table(url, "documents", rows)
    name = f"bench_{kind}_{int(time.time())}"
    if kind == "sql":
        bf = Backfill(name=name, table="documents", set={"ocr_result": SQL_RESHAPE},
                      where=NEEDS_RESHAPE)
    else:
        bf = Backfill(name=name, table="documents", transform=reshape_batch,
                      columns=["ocr_result"], where=NEEDS_RESHAPE)
    settings = Settings(database_url=url)
    with Writers(url, "documents", rows, writers) as load:
        time.sleep(0.5)
        began = time.perf_counter()
        result = run_backfill(settings, bf, workers=workers)
        seconds = time.perf_counter() - began
        time.sleep(0.5)
    return {"rows": result.rows, "seconds": seconds, "rows_per_s": result.rows / seconds,
            "retries": result.retries, "workers": workers, "writers": load.summary(),
            "left": count(url, f"SELECT count(*) FROM documents WHERE {NEEDS_RESHAPE}"),
            "sampled": keep_sample(url, f"sample_{kind}")}


def keep_sample(url: str, name: str) -> int:
    """Copy every 100th reshaped row to ``name`` (to compare (c) with (d) later)."""
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {name}")
        return conn.execute(f"CREATE TABLE {name} AS SELECT id, ocr_result FROM documents "
                            f"WHERE id % 100 = 0 AND {RESHAPED}").rowcount


def differing(url: str, first: str, second: str) -> int:
    """Sampled rows whose reshaped JSON differs (jsonb equality: 0.50 equals 0.5)."""
    return count(url, f"SELECT count(*) FROM {first} a FULL JOIN {second} b USING (id) "
                      "WHERE a.ocr_result IS DISTINCT FROM b.ocr_result")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.backfill", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--sample", type=int, default=20_000,
                        help="rows for the guide's script (b)")
    parser.add_argument("--workers", type=int, default=1, help="umbau workers for (c) and (d)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="repetitions of (a) and (c) without writers (medians)")
    parser.add_argument("--python-workers", type=int, default=2,
                        help="umbau workers for (d); the transform is CPU-bound Python")
    parser.add_argument("--writers", type=int, default=2, help="writer threads for (e), each "
                        "updating a random row every 10 ms")
    parser.add_argument("--database-url",
                        help="a server's maintenance database instead of the embedded one")
    args, _ = parser.parse_known_args(argv)
    with server(args.database_url) as server_url:
        url = fresh_database(server_url, args.rows)
        with psycopg.connect(_libpq(url)) as conn:
            version = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
        print(f"PostgreSQL {version}, {args.rows} rows", flush=True)
        # Throughput without writers, (a) and (c) alternating which goes first; then
        # the same runs under the writers (e).
        runs_a: list[dict[str, Any]] = []
        runs_c: list[dict[str, Any]] = []
        for i in range(args.repeat):
            order = ("a", "c") if i % 2 == 0 else ("c", "a")
            for which in order:
                if which == "a":
                    runs_a.append(set_based(url, args.rows, 0))
                else:
                    runs_c.append(umbau(url, args.rows, 0, args.workers, "sql"))
            print(f"(a) set-based UPDATE: {runs_a[-1]['rows_per_s']:,.0f} rows/s; "
                  f"(c) umbau SQL backfill: {runs_c[-1]['rows_per_s']:,.0f} rows/s", flush=True)
        a, c = median_run(runs_a), median_run(runs_c)
        paired = statistics.median(rc["rows_per_s"] / ra["rows_per_s"]
                                   for ra, rc in zip(runs_a, runs_c, strict=True))
        ea = set_based(url, args.rows, args.writers)
        print(f"(e) writers during (a): {ea['writers']}", flush=True)
        ec = umbau(url, args.rows, args.writers, args.workers, "sql")
        print(f"(e) writers during (c): {ec['writers']}", flush=True)
        d = umbau(url, args.rows, 0, args.python_workers, "python")
        print(f"(d) umbau Python backfill: {d['rows_per_s']:,.0f} rows/s", flush=True)
        b = guide(url, args.sample)
        print(f"(b) guide script: {b['rows_per_s']:,.0f} rows/s, {b['left']} left", flush=True)
        diff = differing(url, "sample_sql", "sample_python")
        with psycopg.connect(_libpq(server_url), autocommit=True) as conn:
            # gigabytes on a named server: not left behind
            conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
    rows = [
        ["(a) one set-based UPDATE", f"{a['rows']:,}", f"{a['seconds']:.1f}",
         f"{a['rows_per_s']:,.0f}", "1.00", str(a["left"]), "-", "-"],
        ["(b) guide script (OFFSET, row by row)", f"{b['rows']:,}", f"{b['seconds']:.1f}",
         f"{b['rows_per_s']:,.0f}", f"{b['rows_per_s'] / a['rows_per_s']:.2f}",
         str(b["left"]), "-", "-"],
        [f"(c) umbau SQL backfill, {args.workers} worker(s)", f"{c['rows']:,}",
         f"{c['seconds']:.1f}",
         f"{c['rows_per_s']:,.0f}", f"{c['rows_per_s'] / a['rows_per_s']:.2f}",
         str(c["left"]), "-", "-"],
        [f"(d) umbau Python backfill, {args.python_workers} workers", f"{d['rows']:,}",
         f"{d['seconds']:.1f}",
         f"{d['rows_per_s']:,.0f}", f"{d['rows_per_s'] / a['rows_per_s']:.2f}",
         str(d["left"]), "-", "-"],
        [f"(e) (a) under {args.writers} writers", f"{ea['rows']:,}", f"{ea['seconds']:.1f}",
         f"{ea['rows_per_s']:,.0f}", f"{ea['rows_per_s'] / a['rows_per_s']:.2f}",
         str(ea["left"]), str(ea["writers"].get("p99_ms")), str(ea["writers"].get("max_ms"))],
        [f"(e) (c) under {args.writers} writers", f"{ec['rows']:,}", f"{ec['seconds']:.1f}",
         f"{ec['rows_per_s']:,.0f}", f"{ec['rows_per_s'] / a['rows_per_s']:.2f}",
         str(ec["left"]), str(ec["writers"].get("p99_ms")), str(ec["writers"].get("max_ms"))],
    ]
    print(table(rows, ["run", "rows", "s", "rows/s", "x (a)", "left", "writer p99 ms",
                       "writer max ms"]))
    print(f"(c)/(a) median of paired ratios over {args.repeat} repetition(s): {paired:.2f}")
    same = diff == 0 and c["sampled"] > 0
    print(f"(c) and (d) produce the same JSON on {c['sampled']} sampled rows: {same}")
    path = write_results("backfill", {"args": vars(args), "server_version": version,
                                      "machine": machine(), "a": a, "b": b, "c": c, "d": d,
                                      "c_over_a_paired": paired,
                                      "e_a": ea, "e_c": ec,
                                      "same_result": same})
    print(f"results: {path}")
    return 0 if same and not any(r["left"] for r in (a, c, d, ea, ec)) else 1
