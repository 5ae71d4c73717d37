"""``umbau fleet upgrade --parallel 4`` against a shell loop of ``umbau upgrade`` and a
shell loop of ``alembic upgrade head``, on N small databases of the Etsy example at
release 1.0.0 (upgraded to 1.1.0, six revisions each); and two ``--worker`` processes
on one run against one.

Every side starts from fresh copies of the same template database (CREATE DATABASE …
TEMPLATE, not timed) and runs as real processes, one side after the other, in the same
run. umbau's sides use ``--backup never`` so that both loops do the same work as
Alembic plus umbau's own (migrator lock, timeouts, history, lint gate); ``--backup-policy
default`` keeps the project's policy instead (a pg_dump per target before 1.1.0's data
steps). Targets: parallel 4 at least 3x faster than the Alembic loop; 2 workers at least
1.7x faster than one.

``python -m benchmarks.fleet [--database-url URL] [--count 200] [--repeat 1]``; without
a URL the embedded pgserver runs in a temporary folder.

``--workers-only`` measures just 1 against 2 ``--worker`` processes, alternating (1, 2,
1, 2, ...) for ``--repeat`` pairs, with the client processes' CPU and the load average;
``--baseline`` adds the same pairs for a plain psycopg client that makes the round trips
a fleet worker makes per target (3 connections, 82 statements) and for a pure-Python CPU
loop: how much two processes can gain on this machine before umbau does anything.
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks._common import (
    Samples,
    clean_environ,
    executable,
    libpq,
    machine,
    paired_ratio,
    ratio,
    run_timed,
    table,
    write_results,
)
from umbau.postgres.scratch import create_database, database_url, drop_database

ROOT = Path(__file__).resolve().parents[1]
ETSY = ROOT / "examples" / "etsy_sevdesk"
RELEASE_1_0 = "3f1c2a9b7d10"
TARGETS = {"parallel": 3.0, "workers": 1.7}


@contextmanager
def server(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    from umbau.postgres import embedded

    with embedded.temporary("umbau-bench-fleet-") as embedded_url:
        yield embedded_url


def make_template(server_url: str) -> str:
    """A database at the Etsy example's 1.0.0 (umbau's history table included)."""
    from umbau.commands.migrate import upgrade
    from umbau.settings import load_settings

    name = f"bench_fleet_tpl_{uuid.uuid4().hex[:6]}"
    create_database(server_url, name)
    settings = load_settings(cwd=ETSY, environ={})
    upgrade(settings.with_overrides(database_url=database_url(server_url, name)), RELEASE_1_0,
            backup="never")
    return name


def copies(server_url: str, template: str, count: int) -> list[str]:
    """``count`` fresh databases from ``template``: their names."""
    prefix = f"bench_shop_{uuid.uuid4().hex[:6]}"
    names = [f"{prefix}_{i:03d}" for i in range(count)]
    for name in names:
        create_database(server_url, name, template=template)
    return names


def drop_all(server_url: str, names: Sequence[str]) -> None:
    for name in names:
        drop_database(server_url, name)


def _template(server_url: str) -> str:
    """The server URL with ``{name}`` as its database (for --url-template)."""
    return database_url(server_url, "DBNAME").replace("DBNAME", "{name}")


def alembic_loop(server_url: str, names: Sequence[str]) -> list[str]:
    urls = " ".join(shlex.quote(database_url(server_url, n)) for n in names)
    alembic = shlex.quote(executable("alembic"))
    ini = shlex.quote(str(ETSY / "alembic.ini"))
    return ["bash", "-c", f"set -e; for url in {urls}; do DATABASE_URL=$url {alembic} "
                          f"-c {ini} upgrade head; done"]


def umbau_loop(server_url: str, names: Sequence[str], backup: list[str]) -> list[str]:
    urls = " ".join(shlex.quote(database_url(server_url, n)) for n in names)
    umbau = shlex.quote(executable("umbau"))
    flags = " ".join(backup)
    return ["bash", "-c", f"set -e; for url in {urls}; do {umbau} --database-url $url "
                          f"upgrade -q {flags}; done"]


def fleet_command(server_url: str, names: Sequence[str], control: str, backup: list[str],
                  *extra: str) -> list[str]:
    return [executable("umbau"), "fleet", "upgrade", "--url-template", _template(server_url),
            "--databases", ",".join(names), "--control-url", control, "-q", *backup, *extra]


def run_workers(commands: Sequence[Sequence[str]]) -> tuple[float, float]:
    """Start every command at once: (wall seconds until the last one ends, CPU seconds
    of all of them)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_before = usage.ru_utime + usage.ru_stime
    began = time.perf_counter()
    procs = [subprocess.Popen(list(c), cwd=ETSY, env=clean_environ(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for c in commands]
    outputs = [p.communicate() for p in procs]
    elapsed = time.perf_counter() - began
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    for proc, (out, err) in zip(procs, outputs, strict=True):
        if proc.returncode != 0:
            raise SystemExit(f"a fleet worker exited with {proc.returncode}:\n{out}\n{err}")
    return elapsed, usage.ru_utime + usage.ru_stime - cpu_before


def measure(server_url: str, template: str, count: int, parallel: int, backup: list[str],
            samples: dict[str, Samples]) -> None:
    """One repetition of every side, each on fresh copies of the template."""
    env = clean_environ()
    sides: list[tuple[str, Any]] = [
        ("alembic loop", lambda names: alembic_loop(server_url, names)),
        ("umbau upgrade loop", lambda names: umbau_loop(server_url, names, backup)),
    ]
    for label, command in sides:
        names = copies(server_url, template, count)
        try:
            samples[label].add(*run_timed(command(names), cwd=ETSY, env=env))
        finally:
            drop_all(server_url, names)
    for label, workers, extra in [
        (f"fleet --parallel {parallel}", 1, ("--parallel", str(parallel))),
        ("fleet, 1 worker process", 1, ("--run", "w1", "--worker")),
        ("fleet, 2 worker processes", 2, ("--run", "w2", "--worker")),
    ]:
        names = copies(server_url, template, count)
        control = f"bench_fleet_ctl_{uuid.uuid4().hex[:6]}"
        create_database(server_url, control)
        try:
            command = fleet_command(server_url, names, database_url(server_url, control),
                                    backup, *extra)
            samples[label].add(*run_workers([command] * workers))
        finally:
            drop_all(server_url, [*names, control])


def measure_workers(server_url: str, template: str, count: int, backup: list[str],
                    samples: dict[str, Samples], loads: list[float]) -> None:
    """One pair: 1 worker process, then 2, each on fresh copies of the template."""
    for label, workers in [("fleet, 1 worker process", 1), ("fleet, 2 worker processes", 2)]:
        names = copies(server_url, template, count)
        control = f"bench_fleet_ctl_{uuid.uuid4().hex[:6]}"
        create_database(server_url, control)
        try:
            command = fleet_command(server_url, names, database_url(server_url, control),
                                    backup, "--run", "w", "--worker")
            loads.append(os.getloadavg()[0])
            samples[label].add(*run_workers([command] * workers))
        finally:
            drop_all(server_url, [*names, control])


BASELINE = """
import sys, psycopg
url, count = sys.argv[1], int(sys.argv[2])
for _ in range(count):
    for statements in (27, 27, 28):
        with psycopg.connect(url, autocommit=True) as conn:
            for _ in range(statements):
                conn.execute("SELECT count(*) FROM pg_class WHERE relname = %s", ("x",))
"""
CPU_LOOP = "sum(i * i for i in range(4_000_000))"


def measure_baseline(server_url: str, count: int, samples: dict[str, Samples]) -> None:
    """One pair of each baseline: the fleet's round trips without umbau, and pure CPU.

    ``count`` targets are split over the processes like the fleet's targets are."""
    python = sys.executable
    url = libpq(server_url)
    for processes in (1, 2):
        share = count // processes
        samples[f"psycopg round trips, {processes} process(es)"].add(*run_workers(
            [[python, "-c", BASELINE, url, str(share)]] * processes))
    for processes in (1, 2):
        loop = f"for _ in range({4 // processes}): {CPU_LOOP}"
        samples[f"Python CPU loop, {processes} process(es)"].add(*run_workers(
            [[python, "-c", loop]] * processes))


def report(samples: dict[str, Samples], parallel: int, count: int) -> dict[str, float]:
    fleet = samples[f"fleet --parallel {parallel}"]
    ratios = {
        "alembic loop / fleet parallel": ratio(samples["alembic loop"], fleet),
        "umbau loop / fleet parallel": ratio(samples["umbau upgrade loop"], fleet),
        "1 worker / 2 workers": ratio(samples["fleet, 1 worker process"],
                                      samples["fleet, 2 worker processes"]),
        "alembic loop / fleet parallel (paired)": paired_ratio(samples["alembic loop"], fleet),
        "1 worker / 2 workers (paired)": paired_ratio(samples["fleet, 1 worker process"],
                                                      samples["fleet, 2 worker processes"]),
    }
    print(table([[s.name, f"{s.median:.2f} s", f"{count / s.median:.1f}"]
                 for s in samples.values()], ["side", "median", "databases/s"]))
    print()
    print(table([[k, f"{v:.2f}"] for k, v in ratios.items()], ["ratio", "value"]))
    return ratios


def workers_main(args: argparse.Namespace, backup: list[str]) -> int:
    """``--workers-only`` (and ``--baseline``): alternating pairs, medians, load average."""
    labels = ["fleet, 1 worker process", "fleet, 2 worker processes"]
    if args.baseline:
        labels += [f"{what}, {n} process(es)" for what in ("psycopg round trips",
                                                           "Python CPU loop") for n in (1, 2)]
    samples = {n: Samples(n) for n in labels}
    loads: list[float] = []
    with server(args.database_url) as server_url:
        template = make_template(server_url)
        try:
            for _ in range(args.repeat):
                measure_workers(server_url, template, args.count, backup, samples, loads)
                if args.baseline:
                    measure_baseline(server_url, args.count, samples)
        finally:
            drop_database(server_url, template)
    pairs = [(labels[i], labels[i + 1]) for i in range(0, len(labels), 2)]
    ratios = {f"{a} / {b}": ratio(samples[a], samples[b]) for a, b in pairs}
    ratios.update({f"{a} / {b} (paired)": paired_ratio(samples[a], samples[b])
                   for a, b in pairs})
    print(table([[s.name, f"{s.median:.2f} s", f"{s.cpu_median:.2f} s",
                  " ".join(f"{x:.2f}" for x in s.seconds)] for s in samples.values()],
                ["side", "median wall", "median CPU", "samples"]))
    print()
    print(table([[k, f"{v:.2f}"] for k, v in ratios.items()], ["ratio", "value"]))
    print(f"\nload average (1 min) before each fleet side: {' '.join(f'{x:.1f}' for x in loads)}")
    path = write_results("fleet-workers", {
        "machine": machine(), "count": args.count, "repeat": args.repeat,
        "backup_policy": args.backup_policy,
        "server": "named" if args.database_url else "embedded pgserver",
        "samples": [s.as_dict() for s in samples.values()], "ratios": ratios,
        "load_average": loads, "target": TARGETS["workers"]})
    print(f"results: {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fleet", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="a server's maintenance database instead of "
                                               "the embedded one")
    parser.add_argument("--count", type=int, default=200, help="databases per side")
    parser.add_argument("--repeat", type=int, default=1, help="repetitions of every side")
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--backup-policy", choices=["never", "default"], default="never")
    parser.add_argument("--workers-only", action="store_true",
                        help="only 1 against 2 worker processes, alternating pairs")
    parser.add_argument("--baseline", action="store_true",
                        help="with --workers-only: plain psycopg and pure-CPU pairs too")
    args, _ = parser.parse_known_args(argv)
    backup = ["--backup", "never"] if args.backup_policy == "never" else []
    if args.workers_only:
        return workers_main(args, backup)
    names = ["alembic loop", "umbau upgrade loop", f"fleet --parallel {args.parallel}",
             "fleet, 1 worker process", "fleet, 2 worker processes"]
    samples = {n: Samples(n) for n in names}
    with server(args.database_url) as server_url:
        template = make_template(server_url)
        try:
            for _ in range(args.repeat):
                measure(server_url, template, args.count, args.parallel, backup, samples)
        finally:
            drop_database(server_url, template)
    ratios = report(samples, args.parallel, args.count)
    met = (ratios["alembic loop / fleet parallel"] >= TARGETS["parallel"]
           and ratios["1 worker / 2 workers"] >= TARGETS["workers"])
    path = write_results("fleet", {
        "machine": machine(), "count": args.count, "repeat": args.repeat,
        "parallel": args.parallel, "backup_policy": args.backup_policy,
        "server": "named" if args.database_url else "embedded pgserver",
        "samples": [s.as_dict() for s in samples.values()], "ratios": ratios,
        "targets": TARGETS, "met": met})
    print(f"\ntargets (parallel >= {TARGETS['parallel']}x the Alembic loop, 2 workers >= "
          f"{TARGETS['workers']}x one): {'met' if met else 'NOT met'}; results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
