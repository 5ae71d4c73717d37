"""Lint benchmark: ``umbau lint`` vs ``alembic upgrade head --sql`` on the synthetic history.

Rendering the SQL offline is the floor of what ``umbau lint`` does (it renders the
same SQL, then parses it with PostgreSQL's parser and runs every rule), so the
target is lint time <= 2x the plain render. Both run as real CLI subprocesses in
the same run, alternating which goes first; neither needs a server (the lint runs
with ``--offline``, and alembic's offline mode only needs a URL for the dialect).

    python -m benchmarks.lint [--revisions 500] [--repeat 5]

Results go to benchmarks/results/lint-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

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

TARGET = 2.0
OFFLINE_URL = "postgresql+psycopg://bench@localhost/offline"


def _lint_summary(project: Path, env: dict[str, str]) -> dict[str, object]:
    """One lint run's JSON: how many statements and findings the timed runs produce."""
    done = subprocess.run([executable("umbau"), "lint", "--offline", "--format", "json"],
                          cwd=project, env=env, capture_output=True, text=True, check=False)
    data = json.loads(done.stdout)
    rules: dict[str, int] = {}
    for finding in data["findings"]:
        rules[finding["rule"]] = rules.get(finding["rule"], 0) + 1
    return {"units": len(data["units"]),
            "statements": sum(u["statements"] for u in data["units"]),
            "via": sorted({u["via"] for u in data["units"]}),
            "findings": len(data["findings"]), "by_rule": rules}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.lint", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--revisions", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    args, _ = parser.parse_known_args(argv)

    with tempfile.TemporaryDirectory(prefix="umbau-bench-lint-") as folder:
        project = make_history(Path(folder) / "history", args.revisions)
        env = clean_environ(DATABASE_URL=OFFLINE_URL)
        lint_env = clean_environ()
        render = Samples("alembic upgrade head --sql")
        linted = Samples("umbau lint --offline")
        commands = [
            (render, [executable("alembic"), "upgrade", "head", "--sql"], env, (0,)),
            (linted, [executable("umbau"), "lint", "--offline", "--format", "json"], lint_env,
             (0, 1)),
        ]
        run_timed(commands[1][1], cwd=project, env=lint_env, ok=(0, 1))  # warm caches
        for repetition in range(args.repeat):
            order = commands if repetition % 2 == 0 else commands[::-1]
            for samples, cmd, cmd_env, ok in order:
                samples.add(*run_timed(cmd, cwd=project, env=cmd_env, ok=ok))
        summary = _lint_summary(project, lint_env)

    lint_ratio, paired = ratio(linted, render), paired_ratio(linted, render)
    rows = [[s.name, f"{s.median:.3f}", f"{s.cpu_median:.3f}"] for s in (render, linted)]
    print(table(rows, ["command", "median s", "cpu s"]))
    print(f"ratio lint/render: {lint_ratio:.2f} (paired {paired:.2f}), target <= {TARGET}")
    print(f"linted: {summary}")
    path = write_results("lint", {
        "umbau": umbau_version, "machine": machine(), "revisions": args.revisions,
        "repeat": args.repeat, "render": render.as_dict(), "lint": linted.as_dict(),
        "ratio": round(lint_ratio, 3), "paired_ratio": round(paired, 3), "target": TARGET,
        "summary": summary,
    })
    print(f"results: {path}")
    return 0 if lint_ratio <= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
