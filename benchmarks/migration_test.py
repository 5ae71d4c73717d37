"""``umbau test`` against pytest-alembic's built-in tests, on the same histories and server.

``python -m benchmarks.migration_test [--server URL] [--repeat N] [--synthetic-repeat N]
[--revisions N]``

For each history (the two example apps and the synthetic one), in one run, side by
side: umbau's checks (single head, upgrade, stairway with catalog snapshots, data
survival with generated rows, models vs. database, second upgrade) against
pytest-alembic's ``test_single_head_revision``, ``test_upgrade``,
``test_up_down_consistency`` and ``test_model_definitions_match_ddl`` (only where the
history has models), in two set-ups (see :func:`time_pytest_alembic`). Both
get a fresh database for every run (pytest-alembic one per test, as its tests
expect an empty database); creating and dropping databases is not timed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks._common import Samples, machine, paired_ratio, table, write_results

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def _server(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    from umbau.postgres import embedded

    with embedded.temporary(prefix="umbau-bench-") as server:
        yield server


def _histories(revisions: int, folder: Path) -> list[tuple[str, Path]]:
    from benchmarks.synthetic import make_history

    found = [(name, ROOT / "examples" / name) for name in ("etsy_sevdesk", "ablage")
             if (ROOT / "examples" / name).is_dir()]
    found.append((f"synthetic-{revisions}", make_history(folder / "synthetic", revisions)))
    return found


def time_umbau(settings: Any, server_url: str) -> tuple[float, Any]:
    from umbau.testing.stairway import TestOptions, run_checks
    from umbau.testing.throwaway import throwaway_database

    with throwaway_database(server_url) as url:
        began = time.perf_counter()
        report = run_checks(settings.with_overrides(database_url=url), url, TestOptions())
        return time.perf_counter() - began, report


def pytest_alembic_tests(with_models: bool) -> list[tuple[str, Callable[[Any], None]]]:
    """pytest-alembic's built-in tests that correspond to umbau's checks.

    Its experimental ``test_downgrade_leaves_no_trace`` is not timed: with SQLAlchemy
    2.1 it stops at once ("Connection, url, or dialect_name is required" without an
    engine, "has_table() should be a Connection" with one), so it checks nothing."""
    from pytest_alembic.tests import default

    tests = [("test_single_head_revision", default.test_single_head_revision),
             ("test_upgrade", default.test_upgrade),
             ("test_up_down_consistency", default.test_up_down_consistency)]
    if with_models:
        tests.append(("test_model_definitions_match_ddl",
                      default.test_model_definitions_match_ddl))
    return tests


def time_pytest_alembic(settings: Any, server_url: str, with_models: bool,
                        shared: bool) -> tuple[float, list[str]]:
    """Each built-in test on its own fresh database; returns (seconds, failed tests).

    ``shared=False``: pytest-alembic gets no engine, and env.py connects to
    ``sqlalchemy.url`` for every command, as plain ``alembic`` does. (Given an Engine,
    pytest-alembic would hand it to env.py as ``config.attributes["connection"]``,
    where these env.py files, following Alembic's connection-sharing recipe, expect a
    Connection.) ``shared=True``: one AUTOCOMMIT Connection for the whole test, its
    fastest set-up (Alembic then still opens a transaction per revision)."""
    import pytest_alembic
    from pytest_alembic.config import Config
    from sqlalchemy import create_engine

    from umbau.alembic_bridge import build_config
    from umbau.testing.throwaway import throwaway_database

    total, failed = 0.0, []
    for name, test in pytest_alembic_tests(with_models):
        with throwaway_database(server_url) as url:
            engine = create_engine(url, isolation_level="AUTOCOMMIT")
            try:
                began = time.perf_counter()
                config = Config.from_raw_config(build_config(settings, url))
                conn = engine.connect() if shared else None
                try:
                    with pytest_alembic.runner(config=config, engine=conn) as runner:
                        test(runner)
                except Exception as exc:  # a failed check is a result here
                    failed.append(f"{name}: {type(exc).__name__}: {str(exc)[:160]}")
                finally:
                    if conn is not None:
                        conn.close()
                total += time.perf_counter() - began
            finally:
                engine.dispose()
    return total, failed


BENCH_EXTRA = "pip install -e '.[bench]'"


def require_pytest_alembic() -> None:
    """SystemExit with the install line when the comparison tool is missing."""
    try:
        import pytest_alembic  # noqa: F401
    except ImportError:
        raise SystemExit(f"this benchmark compares with pytest-alembic, which is not "
                         f"installed: {BENCH_EXTRA}") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.migration_test",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", help="server URL (default: embedded PostgreSQL)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per history (default 3)")
    parser.add_argument("--synthetic-repeat", type=int, default=1,
                        help="runs of the synthetic history (default 1)")
    parser.add_argument("--revisions", type=int, default=500,
                        help="revisions of the synthetic history (default 500)")
    args, _ = parser.parse_known_args(argv)
    require_pytest_alembic()

    from umbau.settings import load_settings

    rows, results = [], {"machine": machine(), "histories": []}
    with tempfile.TemporaryDirectory(prefix="umbau-bench-hist-") as folder, \
            _server(args.server) as server_url:
        for name, path in _histories(args.revisions, Path(folder)):
            settings = load_settings(cwd=path, environ={}).with_overrides(database_url=None)
            with_models = bool(settings.metadata)
            umbau = Samples(f"{name}: umbau test")
            plain = Samples(f"{name}: pytest-alembic")
            shared = Samples(f"{name}: pytest-alembic, shared connection")
            failures: list[str] = []
            repeat = args.synthetic_repeat if name.startswith("synthetic") else args.repeat
            for _ in range(repeat):
                seconds, report = time_umbau(settings, server_url)
                umbau.add(seconds)
                failures += [f"umbau: {f.describe().splitlines()[0]}" for f in report.failures]
                for samples, share in ((plain, False), (shared, True)):
                    seconds, failed = time_pytest_alembic(settings, server_url, with_models,
                                                          share)
                    samples.add(seconds)
                    failures += [f"{samples.name}: {f}" for f in failed]
            revisions = len(report.revisions)
            rows.append([name, str(revisions), f"{umbau.median:.2f}", f"{plain.median:.2f}",
                         f"{shared.median:.2f}", f"{paired_ratio(umbau, plain):.2f}",
                         f"{paired_ratio(umbau, shared):.2f}"])
            results["histories"].append({
                "history": name, "revisions": revisions, "umbau": umbau.as_dict(),
                "pytest_alembic": plain.as_dict(), "pytest_alembic_shared": shared.as_dict(),
                "ratio_umbau_to_pytest_alembic": round(paired_ratio(umbau, plain), 3),
                "ratio_umbau_to_pytest_alembic_shared": round(paired_ratio(umbau, shared), 3),
                "failures": sorted(set(failures))})
            for failure in sorted(set(failures)):
                print(f"  {name}: {failure}", flush=True)
    print(table(rows, ["history", "revisions", "umbau test s", "pytest-alembic s",
                       "pa shared conn s", "umbau/pa", "umbau/pa shared"]))
    print(f"results: {write_results('migration_test', results)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
