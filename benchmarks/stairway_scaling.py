"""``umbau test`` at 100, 500 and 2000 revisions, and pytest-alembic's shared run at 500.

``python -m benchmarks.stairway_scaling [--server URL] [--repeat N] [--sizes 100,500,2000]
[--compare-at 500]``

Targets (issue 10, point 8): the 2000-revision history takes at most 4.5 times the
500-revision one (linear time: 4.0), and at 500 revisions umbau test takes at most
as long as pytest-alembic's fastest set-up (one shared connection) while checking
more. Histories come from :mod:`benchmarks.synthetic` (same seed, so the 500 history
is the first 500 revisions' worth of the same generator). Each run gets a fresh
database; creating and dropping it is not timed. pytest-alembic is installed with
``pip install -e '.[bench]'``.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from pathlib import Path

from benchmarks._common import Samples, machine, paired_ratio, table, write_results
from benchmarks.migration_test import (
    _server,
    require_pytest_alembic,
    time_pytest_alembic,
    time_umbau,
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stairway_scaling",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", help="server URL (default: embedded PostgreSQL)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per size (default 1)")
    parser.add_argument("--sizes", default="100,500,2000", help="revision counts")
    parser.add_argument("--compare-at", type=int, default=500,
                        help="the size pytest-alembic runs at (default 500)")
    args, _ = parser.parse_known_args(argv)
    require_pytest_alembic()

    from benchmarks.synthetic import make_history
    from umbau.settings import load_settings

    sizes = [int(s) for s in args.sizes.split(",")]
    umbau = {n: Samples(f"umbau test {n}") for n in sizes}
    shared = Samples(f"pytest-alembic shared {args.compare_at}")
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="umbau-bench-scale-") as folder, \
            _server(args.server) as server_url:
        for n in sizes:
            path = make_history(Path(folder) / f"h{n}", n)
            settings = load_settings(cwd=path, environ={}).with_overrides(database_url=None)
            for _ in range(args.repeat):
                seconds, report = time_umbau(settings, server_url)
                umbau[n].add(seconds)
                failures += [f"umbau {n}: {f.describe().splitlines()[0]}"
                             for f in report.failures]
                if n == args.compare_at:
                    seconds, failed = time_pytest_alembic(settings, server_url, False, True)
                    shared.add(seconds)
                    failures += [f"pytest-alembic {n}: {f}" for f in failed]
            print(f"  {n} revisions: umbau {umbau[n].median:.2f} s", flush=True)
    rows = [[str(n), f"{umbau[n].median:.2f}", f"{umbau[n].median / n * 1000:.1f}"]
            for n in sizes]
    print(table(rows, ["revisions", "umbau test s", "ms per revision"]))
    results: dict[str, object] = {"machine": machine(), "sizes": {
        str(n): umbau[n].as_dict() for n in sizes}, "failures": sorted(set(failures))}
    if 500 in umbau and 2000 in umbau:
        growth = umbau[2000].median / umbau[500].median
        results["ratio_2000_to_500"] = round(growth, 3)
        print(f"2000 / 500 revisions: {growth:.2f} (target <= 4.5; linear is 4.0)")
    if shared.seconds:
        against = paired_ratio(umbau[args.compare_at], shared)
        results["pytest_alembic_shared"] = shared.as_dict()
        results["ratio_umbau_to_pytest_alembic_shared"] = round(against, 3)
        print(f"umbau / pytest-alembic shared at {args.compare_at}: {against:.2f} "
              f"({umbau[args.compare_at].median:.2f} s vs {shared.median:.2f} s; "
              "target <= 1.0)")
    for failure in sorted(set(failures)):
        print(f"  {failure}")
    print(f"results: {write_results('stairway_scaling', results)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
