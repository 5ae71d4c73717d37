"""What health-aware throttling costs a backfill that is never held, in one run.

(a) one set-based UPDATE (the limit); (b) umbau's SQL backfill with every health
signal off; (c) the defaults (replica lag and the oldest transaction read once a
second); (d) every signal, autovacuum included, read before every batch
(``health_interval = 0``). Each run starts from a fresh copy of the same table; the
order rotates per repetition; medians and ratios to (a) and (b) are printed.

    python -m benchmarks.backfill_health [--rows 300000] [--repeat 3] [--database-url URL]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import psycopg

from benchmarks.backfill.ocr import SQL_RESHAPE
from benchmarks.backfill.run import _libpq, copy_table, fresh_database, server
from umbau.backfill import Backfill, run_backfill
from umbau.settings import Settings

OFF = {"max_replica_lag": "off", "max_transaction_age": "off"}
EVERY_BATCH = {"max_replica_lag": "30s", "max_transaction_age": "10min",
               "hold_during_autovacuum": True, "health_interval": 0}


def _update(url: str) -> int:
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        return conn.execute(f"UPDATE documents SET ocr_result = {SQL_RESHAPE}").rowcount


def _backfill(url: str, name: str, options: dict[str, Any]) -> int:
    bf = Backfill(name=name, table="documents", set={"ocr_result": SQL_RESHAPE},
                  options=options)
    return run_backfill(Settings(database_url=url), bf).rows


def _runs(url: str) -> dict[str, Callable[[int], int]]:
    return {
        "(a) one set-based UPDATE": lambda i: _update(url),
        "(b) umbau backfill, health off": lambda i: _backfill(url, f"off{i}", OFF),
        "(c) umbau backfill, default health (1 s)": lambda i: _backfill(url, f"dflt{i}", {}),
        "(d) umbau backfill, all signals every batch":
            lambda i: _backfill(url, f"every{i}", EVERY_BATCH),
    }


def measure(url: str, rows: int, repeat: int) -> dict[str, list[float]]:
    runs = _runs(url)
    names = list(runs)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for i in range(repeat):
        for name in names[i % len(names):] + names[:i % len(names)]:
            copy_table(url, "documents", rows)
            started = time.perf_counter()
            changed = runs[name](i)
            seconds[name].append(time.perf_counter() - started)
            assert changed == rows, (name, changed)
    return seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database-url")
    args = parser.parse_args(argv)
    with server(args.database_url) as server_url:
        url = fresh_database(server_url, args.rows)
        seconds = measure(url, args.rows, args.repeat)
    limit = statistics.median(seconds["(a) one set-based UPDATE"])
    off = statistics.median(seconds["(b) umbau backfill, health off"])
    print(f"{args.rows:,} rows, {args.repeat} runs each, medians")
    print(f"{'run':<46} {'s':>7} {'rows/s':>9} {'x (a)':>6} {'x (b)':>6}")
    for name, samples in seconds.items():
        median = statistics.median(samples)
        print(f"{name:<46} {median:7.2f} {args.rows / median:9,.0f} {limit / median:6.2f} "
              f"{off / median:6.2f}")


if __name__ == "__main__":
    main()
