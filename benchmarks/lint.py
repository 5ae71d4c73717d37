"""Lint benchmark: ``umbau lint`` vs ``alembic upgrade head --sql`` on the synthetic history.

Rendering the SQL offline is the floor of what ``umbau lint`` does (it renders the
same SQL, then parses it with PostgreSQL's parser and runs every rule), so the
target is lint time <= 2x the plain render. Both run as real CLI subprocesses in
the same run, alternating which goes first; neither needs a server (the lint runs
with ``--offline``, and alembic's offline mode only needs a URL for the dialect).

    python -m benchmarks.lint [--revisions 500] [--repeat 5]

Results go to benchmarks/results/lint-<timestamp>.json.

A speed change must not change what the lint finds. ``--findings FILE`` writes, instead
of timing, the full findings (every rule switched on, upgrade and downgrade) of the
synthetic histories at the given sizes, of the example apps' histories (offline) and of
every rule's bad/ok case files, as canonical JSON: run it before and after a change and
compare the two files byte for byte (``cmp``).
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

TARGET = 1.5
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


def measure(revisions: int, repeat: int) -> dict[str, object]:
    """Medians of render and lint on a synthetic history of ``revisions`` revisions."""
    with tempfile.TemporaryDirectory(prefix="umbau-bench-lint-") as folder:
        project = make_history(Path(folder) / "history", revisions)
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
        for repetition in range(repeat):
            order = commands if repetition % 2 == 0 else commands[::-1]
            for samples, cmd, cmd_env, ok in order:
                samples.add(*run_timed(cmd, cwd=project, env=cmd_env, ok=ok))
        summary = _lint_summary(project, lint_env)
    return {"revisions": revisions, "render": render, "lint": linted, "summary": summary,
            "ratio": ratio(linted, render), "paired": paired_ratio(linted, render)}


ROOT = Path(__file__).resolve().parents[1]


def all_findings(revisions: Sequence[int]) -> dict[str, object]:
    """Every finding of the synthetic histories (``revisions`` sizes), the examples and the
    rules' case files, with every rule switched on (the opt-in ones too), in-process."""
    from umbau.commands.lint import lint
    from umbau.lint.registry import all_rules
    from umbau.settings import load_settings

    every = sorted(all_rules())
    out: dict[str, object] = {}

    def run(name: str, folder: Path, targets: Sequence[str] = ()) -> None:
        settings = load_settings(cwd=folder, environ={}, flags={})
        for downgrade in (False, True):
            result = lint(settings, targets, enable=every, offline=True, downgrade=downgrade)
            data = result.as_dict()
            for unit in data["units"]:  # the synthetic histories live in a temporary folder
                unit["path"] = _relative(unit["path"], folder)
            for finding in data["findings"]:
                finding["path"] = _relative(finding["path"], folder)
            out[f"{name}{' --downgrade' if downgrade else ''}"] = data

    with tempfile.TemporaryDirectory(prefix="umbau-bench-lint-") as tmp:
        for size in revisions:
            run(f"synthetic-{size}", make_history(Path(tmp) / f"h{size}", size))
    for example in sorted(p for p in (ROOT / "examples").iterdir() if p.is_dir()):
        run(f"examples/{example.name}", example)
    cases = sorted(str(p) for p in (ROOT / "tests" / "lint" / "cases").glob("*/*.sql"))
    for case in cases:  # one by one: each case is its own file, linted from scratch
        run(f"case {_relative(case, ROOT)}", ROOT, [case])
    return out


def _relative(path: object, folder: Path) -> object:
    if isinstance(path, str) and Path(path).is_relative_to(folder):
        return str(Path(path).relative_to(folder))
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.lint", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--revisions", type=int, nargs="+", default=[500, 2000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--findings", type=Path, default=None,
                        help="write every finding (no timing) to this file, to compare")
    args, _ = parser.parse_known_args(argv)
    if args.findings is not None:
        found = all_findings(sorted(args.revisions))
        args.findings.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n",
                                 encoding="utf-8")
        print(f"{sum(len(v['findings']) for v in found.values())} findings "  # type: ignore[index]
              f"of {len(found)} runs: {args.findings}")
        return 0

    runs = [measure(n, args.repeat) for n in sorted(args.revisions)]
    rows = []
    for run in runs:
        for samples in (run["render"], run["lint"]):
            assert isinstance(samples, Samples)
            rows.append([run["revisions"], samples.name, f"{samples.median:.3f}",
                         f"{samples.cpu_median:.3f}"])
    print(table(rows, ["revisions", "command", "median s", "cpu s"]))
    ok = True
    for run in runs:
        print(f"{run['revisions']} revisions: ratio lint/render {run['ratio']:.2f} "
              f"(paired {run['paired']:.2f}), target <= {TARGET}; linted: {run['summary']}")
        ok = ok and float(run["ratio"]) <= TARGET  # type: ignore[arg-type]
    growth = _growth(runs)
    if growth:
        print(f"growth {runs[0]['revisions']} -> {runs[-1]['revisions']} revisions: lint "
              f"x{growth[0]:.2f}, render x{growth[1]:.2f} (linear: lint's no more than "
              "the render's)")
    path = write_results("lint", {
        "umbau": umbau_version, "machine": machine(), "repeat": args.repeat, "target": TARGET,
        "sizes": [{"revisions": r["revisions"], "render": r["render"].as_dict(),  # type: ignore[attr-defined]
                   "lint": r["lint"].as_dict(), "ratio": round(float(r["ratio"]), 3),  # type: ignore[attr-defined,arg-type]
                   "paired_ratio": round(float(r["paired"]), 3),  # type: ignore[arg-type]
                   "summary": r["summary"]} for r in runs],
        "growth": growth,
    })
    print(f"results: {path}")
    return 0 if ok else 1


def _growth(runs: list[dict[str, object]]) -> list[float]:
    """How much lint and render grow from the smallest size to the largest (medians)."""
    if len(runs) < 2:
        return []
    first, last = runs[0], runs[-1]
    lint_growth = last["lint"].median / first["lint"].median  # type: ignore[attr-defined]
    render_growth = last["render"].median / first["render"].median  # type: ignore[attr-defined]
    return [round(lint_growth, 3), round(render_growth, 3)]


if __name__ == "__main__":
    raise SystemExit(main())
