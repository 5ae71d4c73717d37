"""Payload benchmark: Ablage's OCR results from the 0.9 format to 2.0, in one run.

(a) one hand-written set-based ``UPDATE … SET ocr_result = jsonb_build_object(…)`` (the
limit); (b) ``Backfill.from_payload`` with the chain's SQL forms (batched, resumable,
exactly once); (c) the same backfill through the Python upgraders. Each measurement
starts from a fresh copy of the same generated table; (a) and (b) alternate which goes
first. The target (issue 15): (b) at least 0.5x the rows/s of (a).

    python -m benchmarks.payload [--rows 1000000] [--repeat 3] [--python-rows 100000]
        [--python-workers 2] [--database-url URL]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg

from benchmarks._common import machine, table, write_results
from benchmarks.backfill.run import _libpq, count, median_run, server
from umbau.backfill import Backfill, run_backfill
from umbau.postgres.connect import normalize_url
from umbau.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DATABASE = "umbau_bench_payload"

# 0.9-format documents like the Ablage OCR worker wrote them.
SEED = """
CREATE TABLE documents_seed AS
SELECT g AS id,
       jsonb_build_object(
           'content', repeat('lorem ipsum ', 5) || g, 'score', round((g % 100) / 100.0, 2),
           'engine', CASE WHEN g % 3 = 0 THEN 'tesseract' ELSE 'easyocr' END,
           'lang', 'de', 'page_count', 1 + g % 4, 'duration', round((g % 50) / 10.0, 1),
           'segments', jsonb_build_array(
               jsonb_build_object('text', 'head ' || g, 'bbox', jsonb_build_array(0, 0, 100, 20),
                                  'conf', 0.9, 'type', 'title'),
               jsonb_build_object('text', 'body ' || g, 'bbox', jsonb_build_array(0, 30, 100, 90),
                                  'conf', 0.8))) AS ocr_result
FROM generate_series(1, {rows}) AS g
"""

# What a developer writes by hand for 0.9 -> 2.0 in one statement.
HAND_WRITTEN = """
UPDATE documents SET ocr_result = jsonb_build_object(
    'version', '2.0',
    'text', coalesce(ocr_result -> 'content', '""'),
    'confidence', coalesce(ocr_result -> 'score', '0.0'),
    'backend', coalesce(ocr_result -> 'engine', '"unknown"'),
    'metadata', jsonb_build_object(
        'language', coalesce(ocr_result -> 'lang', '"de"'),
        'pages', coalesce(ocr_result -> 'page_count', '1'),
        'processing_ms', round(coalesce((ocr_result ->> 'duration')::numeric, 0) * 1000)::bigint),
    'blocks', coalesce(
        (SELECT jsonb_agg(jsonb_build_object(
                    'text', coalesce(s -> 'text', '""'), 'bbox', coalesce(s -> 'bbox', '[0,0,0,0]'),
                    'confidence', coalesce(s -> 'conf', '0.0'),
                    'type', coalesce(s -> 'type', '"text"')) ORDER BY n)
         FROM jsonb_array_elements(ocr_result -> 'segments') WITH ORDINALITY AS x (s, n)),
        '[]'))
WHERE ocr_result IS NOT NULL AND ocr_result ->> 'version' IS DISTINCT FROM '2.0'
"""

LEFT = "SELECT count(*) FROM documents WHERE ocr_result ->> 'version' IS DISTINCT FROM '2.0'"


def formats() -> Any:
    """The Ablage example's OCR chain (registered on import)."""
    folder = str(ROOT / "examples" / "ablage")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    import ablage_app.ocr_formats as module

    return module


def fresh_database(server_url: str, rows: int) -> str:
    with psycopg.connect(_libpq(server_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DATABASE}"')
    url = normalize_url(server_url).set(database=DATABASE).render_as_string(hide_password=False)
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        conn.execute(SEED.format(rows=int(rows)))
    return url


def copy_table(url: str, rows: int) -> None:
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS documents")
        conn.execute(f"CREATE TABLE documents AS SELECT * FROM documents_seed WHERE id <= {rows}")
        conn.execute("ALTER TABLE documents ADD PRIMARY KEY (id)")
        conn.execute("VACUUM ANALYZE documents")
        conn.execute("CHECKPOINT")


def hand_written(url: str, rows: int) -> dict[str, Any]:
    copy_table(url, rows)
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        began = time.perf_counter()
        changed = conn.execute(HAND_WRITTEN).rowcount
        seconds = time.perf_counter() - began
    return {"rows": changed, "seconds": seconds, "rows_per_s": changed / seconds,
            "left": count(url, LEFT)}


def payload_backfill(url: str, rows: int, *, use_sql: bool, workers: int) -> dict[str, Any]:
    copy_table(url, rows)
    kind = formats().KIND
    name = f"bench_payload_{'sql' if use_sql else 'python'}_{time.time_ns()}"
    fill = Backfill.from_payload("documents", "ocr_result", kind, name=name, use_sql=use_sql)
    began = time.perf_counter()
    result = run_backfill(Settings(database_url=url), fill, workers=workers)
    seconds = time.perf_counter() - began
    return {"rows": result.rows, "seconds": seconds, "rows_per_s": result.rows / seconds,
            "workers": workers, "left": count(url, LEFT),
            "verified": bool(result.verification and result.verification.ok)}


def same_documents(url: str, rows: int) -> bool:
    """(a) and (b) write the same documents: compared on a fresh 2,000-row copy."""
    sample = min(rows, 2000)
    hand_written(url, sample)
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS documents_hand")
        conn.execute("CREATE TABLE documents_hand AS SELECT * FROM documents")
    payload_backfill(url, sample, use_sql=True, workers=1)
    return count(url, "SELECT count(*) FROM documents d JOIN documents_hand h USING (id) "
                      "WHERE d.ocr_result IS DISTINCT FROM h.ocr_result") == 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.payload", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--python-rows", type=int, default=100_000,
                        help="rows for (c), the Python upgraders (CPU-bound)")
    parser.add_argument("--python-workers", type=int, default=2)
    parser.add_argument("--database-url",
                        help="a server's maintenance database instead of the embedded one")
    args, _ = parser.parse_known_args(argv)
    with server(args.database_url) as server_url:
        url = fresh_database(server_url, max(args.rows, args.python_rows))
        with psycopg.connect(_libpq(url)) as conn:
            version = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
        print(f"PostgreSQL {version}, {args.rows} rows", flush=True)
        identical = same_documents(url, args.rows)
        print(f"hand-written UPDATE and payload backfill write the same documents: {identical}")
        runs_a: list[dict[str, Any]] = []
        runs_b: list[dict[str, Any]] = []
        for i in range(args.repeat):
            order = ("a", "b") if i % 2 == 0 else ("b", "a")
            for which in order:
                if which == "a":
                    runs_a.append(hand_written(url, args.rows))
                else:
                    runs_b.append(payload_backfill(url, args.rows, use_sql=True, workers=1))
            print(f"(a) hand-written UPDATE: {runs_a[-1]['rows_per_s']:,.0f} rows/s; "
                  f"(b) payload backfill (SQL): {runs_b[-1]['rows_per_s']:,.0f} rows/s",
                  flush=True)
        c = payload_backfill(url, args.python_rows, use_sql=False, workers=args.python_workers)
        a, b = median_run(runs_a), median_run(runs_b)
        paired = statistics.median(rb["rows_per_s"] / ra["rows_per_s"]
                                   for ra, rb in zip(runs_a, runs_b, strict=True))
    rows = [
        ["(a) hand-written set-based UPDATE", f"{a['rows_per_s']:,.0f}", "1.00", a["left"]],
        ["(b) Backfill.from_payload, SQL forms", f"{b['rows_per_s']:,.0f}",
         f"{b['rows_per_s'] / a['rows_per_s']:.2f} (paired {paired:.2f})", b["left"]],
        [f"(c) Backfill.from_payload, Python, {args.python_workers} workers",
         f"{c['rows_per_s']:,.0f}", f"{c['rows_per_s'] / a['rows_per_s']:.2f}", c["left"]],
    ]
    print(table(rows, ["", "rows/s (median)", "ratio to (a)", "rows left"]))
    met = b['rows_per_s'] >= 0.5 * a['rows_per_s']
    print(f"target: (b) >= 0.5x (a): {'met' if met else 'MISSED'}")
    path = write_results("payload", {"machine": machine(), "server_version": version,
                                     "rows": args.rows, "identical": identical,
                                     "a": a, "b": b, "c": c, "paired_ratio": paired})
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
