"""The pytest plugin, run in a child pytest on small projects."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from helpers import add_revision, linear_project

RUNNER_TEST = '''
def test_runner_steps(umbau_runner):
    assert umbau_runner.current() == ()
    umbau_runner.upgrade("r1")
    umbau_runner.execute("INSERT INTO t1 (id, v) VALUES (-1, 'kept')")
    before = umbau_runner.snapshot()
    umbau_runner.upgrade("head")
    umbau_runner.downgrade("r1")
    assert before.diff(umbau_runner.snapshot()) == []
    assert umbau_runner.scalar("SELECT v FROM t1 WHERE id = -1") == "kept"
    assert umbau_runner.fill()["t1"] == 3
'''


def run_pytest(folder: Path, server_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UMBAU_")}
    env["UMBAU_TEST_DATABASE_URL"] = server_url
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                           "-rs", str(folder), *args],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=120)


def project_with_checks(folder: Path, count: int = 2) -> Path:
    project = linear_project(folder, count)
    (project / "umbau.toml").write_text('script_location = "migrations"\n', encoding="utf-8")
    (project / "conftest.py").write_text("umbau_checks = True\n", encoding="utf-8")
    return project


def test_one_line_in_conftest_collects_the_checks(tmp_path: Path, server_url: str) -> None:
    project = project_with_checks(tmp_path)
    (project / "test_mine.py").write_text(RUNNER_TEST, encoding="utf-8")
    done = run_pytest(project, server_url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "7 passed, 1 skipped" in done.stdout  # drift: no metadata setting
    assert "no metadata setting" in done.stdout


def test_a_broken_history_fails_its_check(tmp_path: Path, server_url: str) -> None:
    project = project_with_checks(tmp_path)
    add_revision(project, "r3", "r2", upgrade='op.add_column("t1", sa.Column("x", sa.Text))',
                 downgrade='op.execute("SELECT 1")')
    (project / "conftest.py").write_text('umbau_checks = ["stairway", "upgrade"]\n',
                                         encoding="utf-8")
    done = run_pytest(project, server_url)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 failed, 1 passed" in done.stdout  # the stairway goes on to head
    assert "test_umbau_stairway" in done.stdout
    assert "column t1.x: unexpected" in done.stdout


def test_the_plugin_stays_quiet_without_the_line(tmp_path: Path, server_url: str) -> None:
    project = linear_project(tmp_path, 1)
    (project / "test_nothing.py").write_text("def test_x():\n    pass\n", encoding="utf-8")
    done = run_pytest(project, "postgresql://nobody@127.0.0.1:1/none")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


def dev_extra_distributions() -> set[str]:
    """Names of the distributions ``pip install -e '.[dev]'`` (what `make demo` and
    `make test` build) puts into a venv: umbau's own from pyproject.toml, theirs from
    the installed metadata."""
    import tomllib
    from importlib.metadata import PackageNotFoundError, requires

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml")
                            .read_text(encoding="utf-8"))["project"]
    found = {"umbau"}
    todo = [(Requirement(r), set[str]()) for r in
            project["dependencies"] + project["optional-dependencies"]["dev"]]
    while todo:
        req, extras = todo.pop()
        if req.marker and not any(req.marker.evaluate({"extra": e}) for e in extras | {""}):
            continue
        name = canonicalize_name(req.name)
        if name in found:
            continue
        found.add(name)
        try:
            todo += [(Requirement(r), set(req.extras)) for r in requires(req.name) or []]
        except PackageNotFoundError:
            continue  # an optional dependency not installed here
    return found


def test_the_plugin_loads_in_the_dev_extra_environment(tmp_path: Path, server_url: str) -> None:
    """Only the pytest plugins of the dev extra are active, as in the venv of `make demo`;
    the project's checks collect and pass (pytest-alembic broke this collection)."""
    from importlib.metadata import entry_points

    from packaging.utils import canonicalize_name

    installed = dev_extra_distributions()
    assert "pytest-alembic" not in installed
    blocked = [arg for ep in entry_points(group="pytest11")
               if ep.dist is not None and canonicalize_name(ep.dist.name) not in installed
               for arg in ("-p", f"no:{ep.name}")]
    project = project_with_checks(tmp_path)
    done = run_pytest(project, server_url, *blocked)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "6 passed, 1 skipped" in done.stdout
