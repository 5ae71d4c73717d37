"""Issue 9 (renovation): a default ``umbau upgrade`` and ``umbau --help``, this tree
against a baseline commit (default ``main``), side by side in one run.

Each measurement runs in a fresh interpreter whose ``PYTHONPATH`` is the baseline's or
this tree's ``src/``, alternating, on the same embedded PostgreSQL. The upgrade probe
counts, by wrapping the real functions, the ``Project``s built, env.py runs and psycopg
sessions of one ``umbau upgrade`` (CLI defaults: lint gate and backup guard on) of two
pending revisions on a database at r1 (three revisions, each creating a table).

    python -m benchmarks.renovation [--baseline REF] [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_HELP = """
import sys
from umbau.cli import main
main(["--help"])
sys.stderr.write(repr("rich.progress" in sys.modules))
"""

_UPGRADE = """
import json, sys, time, textwrap
from collections import Counter
from pathlib import Path
import psycopg
from umbau import alembic_bridge
from umbau.cli import main
from umbau.commands.init import init
from umbau.settings import load_settings

folder, url = Path(sys.argv[1]), sys.argv[2]
init(load_settings(cwd=folder, environ={}), folder)
down = None
for i in range(1, 4):
    body = (f'op.create_table("t{i}", sa.Column("id", sa.BigInteger, primary_key=True))')
    (folder / "migrations" / "versions" / f"r{i}.py").write_text(
        f'from alembic import op\\nimport sqlalchemy as sa\\n'
        f'revision = "r{i}"\\ndown_revision = {down!r}\\n'
        f'branch_labels = None\\ndepends_on = None\\n\\n'
        f'def upgrade():\\n    {body}\\n\\n'
        f'def downgrade():\\n    op.drop_table("t{i}")\\n')
    down = f"r{i}"
main(["--config", str(folder / "umbau.toml"), "--database-url", url, "upgrade", "r1",
      "--quiet"])  # a database in use: r1 applied, r2 and r3 pending
seen = Counter()
init_, run_env, connect = (alembic_bridge.Project.__init__, alembic_bridge.run_env,
                           psycopg.connect)
def counted_init(self, *a, **k):
    seen["projects"] += 1
    init_(self, *a, **k)
def counted_run_env(*a, **k):
    seen["env_runs"] += 1
    return run_env(*a, **k)
def counted_connect(*a, **k):
    seen["sessions"] += 1
    return connect(*a, **k)
alembic_bridge.Project.__init__ = counted_init
alembic_bridge.run_env = counted_run_env
psycopg.connect = counted_connect
began = time.perf_counter()
code = main(["--config", str(folder / "umbau.toml"), "--database-url", url, "upgrade",
             "--quiet"])
seen["seconds"] = time.perf_counter() - began
seen["exit_code"] = code
print(json.dumps(seen))
"""


def _export(ref: str, into: Path) -> Path:
    """``src/`` of ``ref`` written into ``into`` (git archive): the baseline's package."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "src"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "src"


def _python(src: Path, code: str, *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True,
                          text=True, check=False)
    return time.perf_counter() - began, done


def _upgrade(src: Path, server_url: str, work: Path, index: int) -> dict[str, float]:
    from umbau.postgres.scratch import database_url, drop_database, recreate_database

    name = f"umbau_bench_renov_{index}"
    recreate_database(server_url, name)
    folder = work / f"project-{index}"
    folder.mkdir()
    try:
        _, done = _python(src, _UPGRADE, str(folder), database_url(server_url, name))
    finally:
        drop_database(server_url, name)
    if done.returncode != 0:
        raise SystemExit(f"upgrade probe failed:\n{done.stderr}")
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    if figures["exit_code"] != 0:
        raise SystemExit(f"umbau upgrade exited with {figures['exit_code']}:\n{done.stderr}")
    return figures


def _row(name: str, before: list[float], after: list[float], unit: str = "") -> str:
    b, a = statistics.median(before), statistics.median(after)
    ratio = f"{a / b:.2f}" if b else "-"
    return f"| {name} | {b:g}{unit} | {a:g}{unit} | {ratio} |"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.renovation")
    parser.add_argument("--baseline", default="main", help="git ref to compare with")
    parser.add_argument("--rounds", type=int, default=7)
    args, _ = parser.parse_known_args(argv)
    from umbau.postgres import embedded

    runs: dict[str, dict[str, list[float]]] = {"before": {}, "after": {}}
    with tempfile.TemporaryDirectory(prefix="umbau-bench-renov-") as tmp, \
            embedded.temporary(prefix="umbau-bench-renov-pg-") as server_url:
        sources = {"before": _export(args.baseline, Path(tmp)), "after": ROOT / "src"}
        rich_loaded = {}
        for round_ in range(args.rounds):
            for side, src in sources.items():
                seconds, done = _python(src, _HELP)
                rich_loaded[side] = done.stderr.strip().endswith("True")
                runs[side].setdefault("help_ms", []).append(round(seconds * 1000))
                figures = _upgrade(src, server_url, Path(tmp), round_ * 2 + (side == "after"))
                for key in ("projects", "sessions", "env_runs"):
                    runs[side].setdefault(key, []).append(figures.get(key, 0))
                runs[side].setdefault("upgrade_ms", []).append(round(figures["seconds"] * 1000))
    print(f"baseline {args.baseline} vs this tree, {args.rounds} rounds, medians; "
          f"load average {os.getloadavg()[0]:.1f}")
    print("| measure | before | after | after/before |\n|---|---:|---:|---:|")
    for key, unit in (("projects", ""), ("sessions", ""), ("env_runs", ""),
                      ("upgrade_ms", " ms"), ("help_ms", " ms")):
        print(_row(key, runs["before"][key], runs["after"][key], unit))
    print(f"| rich.progress imported by --help | {rich_loaded['before']} | "
          f"{rich_loaded['after']} | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
