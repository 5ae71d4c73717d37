"""Core benchmark: ``umbau upgrade`` vs ``alembic upgrade head``, ``umbau status`` vs
``alembic current``, on the synthetic history (500 revisions by default).

Both tools run as real CLI subprocesses against the same server, alternating
which goes first; every upgrade starts from a fresh, empty database. Targets
(from the issue): upgrade ratio umbau/alembic <= 1.15, status ratio <= 1.0.

    python -m benchmarks.core [--revisions 500] [--repeat 5] [--status-repeat 15]
                              [--synchronous-commit on|off] [--database-url URL]

Without ``--database-url`` the embedded PostgreSQL (pgserver) with its data in
.umbau/bench/core-pg is used. Results go to benchmarks/results/core-<timestamp>.json.
Besides wall-clock time, the CPU time of each CLI process (user + system) is recorded:
on a machine shared with other work it is the steadier measure of client overhead.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
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
from benchmarks.synthetic import make_history
from umbau._version import __version__ as umbau_version
from umbau.postgres.connect import connect, normalize_url
from umbau.postgres.scratch import recreate_database

ROOT = Path(__file__).resolve().parents[1]
DATABASE = "umbau_bench_core"
UPGRADE_TARGET = 1.15
STATUS_TARGET = 1.0


@contextmanager
def server(database_url: str | None) -> Iterator[str]:
    """The maintenance-database URL of the named server, or of the embedded one."""
    if database_url:
        yield normalize_url(database_url).render_as_string(hide_password=False)
        return
    from umbau.postgres import embedded

    running = embedded.start(ROOT / ".umbau" / "bench" / "core-pg")
    try:
        yield running.url("postgres")
    finally:
        running.stop()


def fresh_database(server_url: str, synchronous_commit: str) -> None:
    """Drop and create the benchmark database; ``off`` takes the disk flush out of commits."""
    recreate_database(server_url, DATABASE)
    if synchronous_commit != "on":
        with connect(server_url, autocommit=True) as conn:
            conn.execute(text(f'ALTER DATABASE "{DATABASE}" SET synchronous_commit = '
                              f"{synchronous_commit}"))


def _with_database(url: str, name: str) -> str:
    return normalize_url(url).set(database=name).render_as_string(hide_password=False)


def _server_version(url: str) -> str:
    with connect(url) as conn:
        return str(conn.execute(text("SHOW server_version")).scalar())


def _at_head(url: str, head: str) -> None:
    with connect(url) as conn:
        found = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    if found != [head]:
        raise SystemExit(f"after the upgrade the database is at {found}, not {head}")


# Where the CLI has them, umbau upgrade runs without its lint gate and backup check, like
# alembic: the runner alone (lock, timeouts, one transaction and history row per revision).
# The gate would refuse this history anyway (plain CREATE INDEX, validated constraints on
# tables with rows); its cost is the lint benchmark's business.
RUNNER_ONLY = ["--allow-unsafe", "--backup", "never"]


class Tools:
    """The CLIs, run in the project folder against one database."""

    def __init__(self, project: Path, url: str) -> None:
        self.project = project
        self.env = clean_environ(DATABASE_URL=url)
        alembic, umbau = executable("alembic"), executable("umbau")
        runner_only = RUNNER_ONLY if self._has_options(umbau, RUNNER_ONLY) else []
        self.upgrade = {"alembic": [alembic, "upgrade", "head"],
                        "umbau": [umbau, "upgrade", "--quiet", *runner_only]}
        self.status = {"alembic": [alembic, "current"], "umbau": [umbau, "status"]}

    def _has_options(self, umbau: str, options: list[str]) -> bool:
        helptext = subprocess.run([umbau, "upgrade", "--help"], capture_output=True, text=True,
                                  env=self.env, check=False).stdout
        return all(o in helptext for o in options if o.startswith("--"))

    def run(self, command: list[str]) -> tuple[float, float]:
        return run_timed(command, cwd=self.project, env=self.env)


def _label(command: list[str]) -> str:
    return " ".join([Path(command[0]).name, *command[1:]])


def _rotations(names: list[str], number: int) -> list[str]:
    """Who goes first changes with every repetition."""
    shift = number % len(names)
    return names[shift:] + names[:shift]


def bench_upgrade(tools: Tools, server_url: str, head: str, repeat: int,
                  synchronous_commit: str) -> dict[str, Samples]:
    """Each repetition: every tool upgrades a fresh database, the first one rotating."""
    samples = {name: Samples(_label(cmd)) for name, cmd in tools.upgrade.items()}
    db_url = _with_database(server_url, DATABASE)
    for number in range(-1, repeat):  # -1: warm-up (compiles the revision files' .pyc)
        for name in _rotations(list(samples), number):
            fresh_database(server_url, synchronous_commit)
            seconds, cpu = tools.run(tools.upgrade[name])
            _at_head(db_url, head)
            if number >= 0:
                samples[name].add(seconds, cpu)
        if number >= 0:
            last = ", ".join(f"{n} {s.seconds[-1]:.2f}s" for n, s in samples.items())
            print(f"  upgrade {number + 1}/{repeat}: {last}", flush=True)
    return samples


def bench_status(tools: Tools, repeat: int) -> dict[str, Samples]:
    """``alembic current`` vs ``umbau status`` on the migrated database, alternating."""
    samples = {name: Samples(_label(cmd)) for name, cmd in tools.status.items()}
    for number in range(-1, repeat):
        for name in _rotations(list(samples), number):
            seconds, cpu = tools.run(tools.status[name])
            if number >= 0:
                samples[name].add(seconds, cpu)
    return samples


def report(upgrade: dict[str, Samples], status: dict[str, Samples]) -> tuple[str, dict[str, Any]]:
    """The text table, and the figures for the JSON results."""
    rows, figures = [], {}
    for label, group, target in (("upgrade", upgrade, UPGRADE_TARGET),
                                 ("status", status, STATUS_TARGET)):
        base = group["alembic"]
        figures[label] = {"target": target, "alembic": base.as_dict()}
        rows.append([base.name, f"{base.median:.3f}", f"{min(base.seconds):.3f}",
                     f"{max(base.seconds):.3f}", str(len(base.seconds)),
                     f"{base.cpu_median:.3f}", "", "", "", ""])
        for name, s in group.items():
            if name == "alembic":
                continue
            value, paired = ratio(s, base), paired_ratio(s, base)
            cpu = s.cpu_median / base.cpu_median
            figures[label][name] = {**s.as_dict(), "ratio": round(value, 3),
                                    "paired_ratio": round(paired, 3), "cpu_ratio": round(cpu, 3),
                                    "met": value <= target}
            rows.append([s.name, f"{s.median:.3f}", f"{min(s.seconds):.3f}",
                         f"{max(s.seconds):.3f}", str(len(s.seconds)), f"{s.cpu_median:.3f}",
                         f"{value:.2f}", f"{paired:.2f}", f"{cpu:.2f}", f"<= {target}"])
    text_table = table(rows, ["command", "median s", "min s", "max s", "n", "cpu s",
                              "vs alembic", "paired", "cpu", "target"])
    return text_table, figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.core", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--revisions", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5, help="upgrade repetitions")
    parser.add_argument("--status-repeat", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--synchronous-commit", choices=["on", "off"], default="on",
                        help="off: commits do not wait for the disk (less noise on a busy "
                             "machine; the same for both tools)")
    parser.add_argument("--database-url",
                        help="a server's maintenance database instead of the embedded one")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="umbau-bench-") as tmp, \
            server(args.database_url) as server_url:
        project = make_history(Path(tmp) / "project", args.revisions, seed=args.seed)
        head = sorted((project / "migrations" / "versions").glob("*.py"))[-1].name.split("_")[1]
        tools = Tools(project, _with_database(server_url, DATABASE))
        version = _server_version(server_url)
        print(f"core benchmark: {args.revisions} revisions, PostgreSQL {version}, "
              f"{args.repeat} upgrades and {args.status_repeat} status runs per tool, "
              f"synchronous_commit={args.synchronous_commit}", flush=True)
        upgrade = bench_upgrade(tools, server_url, head, args.repeat, args.synchronous_commit)
        # status reads the database as umbau leaves it (with its history table)
        fresh_database(server_url, args.synchronous_commit)
        tools.run(tools.upgrade["umbau"])
        status = bench_status(tools, args.status_repeat)
        with connect(server_url, autocommit=True) as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))

    text_table, figures = report(upgrade, status)
    print(text_table)
    path = write_results("core", {
        "benchmark": "core", "revisions": args.revisions, "seed": args.seed,
        "repeat": args.repeat, "status_repeat": args.status_repeat,
        "synchronous_commit": args.synchronous_commit,
        "server": "embedded pgserver" if not args.database_url else "named",
        "postgres": version, "umbau": umbau_version, "machine": machine(), **figures,
    })
    print(f"results: {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
