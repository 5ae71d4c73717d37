"""Every error: one line, its documented exit code, JSON with --format json, --debug."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import add_revision, linear_project, make_project
from sqlalchemy import text

from umbau.cli import hoist_global_options, main
from umbau.postgres.connect import connect

pytestmark = pytest.mark.db


def _cli(project: Path, url: str, capsys: pytest.CaptureFixture[str],
         *args: str) -> tuple[int, str, str]:
    code = main(["--config", str(project / "umbau.toml"), "--database-url", url, *args])
    out, err = capsys.readouterr()
    return code, out, err


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("umbau: error: ")
    return lines[0]


def _version(url: str) -> list[str]:
    with connect(url) as conn:
        if not conn.execute(text("SELECT to_regclass('alembic_version')")).scalar():
            return []
        return list(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())


def test_env_py_that_fails_to_import(tmp_path: Path, database_url: str,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    project = linear_project(tmp_path, 1)
    env = project / "migrations" / "env.py"
    env.write_text(env.read_text().replace("import os\n", "import os\nimport not_installed_mod\n"))
    for command in (["upgrade"], ["status"], ["check"], ["downgrade", "base", "--yes"],
                    ["current"]):
        code, _, err = _cli(project, database_url, capsys, *command)
        assert code == 19, (command, err)
        line = _one_line(err)
        assert "env.py:" in line and "not_installed_mod" in line
    assert _version(database_url) == []


def test_revision_without_downgrade(tmp_path: Path, database_url: str,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    project = linear_project(tmp_path, 2)
    path = project / "migrations" / "versions" / "r2.py"
    path.write_text(path.read_text().split("def downgrade")[0])
    assert _cli(project, database_url, capsys, "upgrade")[0] == 0
    for command in (["downgrade", "-1", "--yes"], ["downgrade", "--sql", "r2:r1"]):
        code, _, err = _cli(project, database_url, capsys, *command)
        assert code == 11, (command, err)
        assert "r2 has no downgrade()" in _one_line(err)
    assert _version(database_url) == ["r2"]


def test_revision_without_upgrade(tmp_path: Path, database_url: str,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    project = linear_project(tmp_path, 1)
    path = project / "migrations" / "versions" / "r1.py"
    source = path.read_text()
    path.write_text(source.replace("def upgrade():", "def upgrade_later():"))
    code, _, err = _cli(project, database_url, capsys, "upgrade")
    assert code == 8 and "r1 has no upgrade()" in _one_line(err)


def test_branch_relative_targets(tmp_path: Path, database_url: str,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    make_project(tmp_path)
    add_revision(tmp_path, "a1", None)
    path = tmp_path / "migrations" / "versions" / "a1.py"
    path.write_text(path.read_text().replace("branch_labels = None",
                                             "branch_labels = ('feat',)"))
    add_revision(tmp_path, "a2", "a1")
    assert _cli(tmp_path, database_url, capsys, "upgrade", "feat@+1")[0] == 0
    assert _version(database_url) == ["a1"]
    assert _cli(tmp_path, database_url, capsys, "upgrade", "feat@+1")[0] == 0
    assert _version(database_url) == ["a2"]
    assert _cli(tmp_path, database_url, capsys, "downgrade", "feat@-1", "--yes")[0] == 0
    assert _version(database_url) == ["a1"]
    code, _, err = _cli(tmp_path, database_url, capsys, "upgrade", "nolabel@+1")
    assert code == 9 and "unknown branch label 'nolabel'" in _one_line(err)
    assert _version(database_url) == ["a1"]


def test_upgrade_from_an_unknown_database_revision_exits_4(
        tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    project = linear_project(tmp_path, 2)
    assert _cli(project, database_url, capsys, "upgrade", "r1")[0] == 0
    with connect(database_url) as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'deadbeef'"))
        conn.commit()
    code, check_out, _ = _cli(project, database_url, capsys, "check")
    assert code == 4
    message = check_out.split(": ", 1)[1].strip()
    for command in (["upgrade"], ["downgrade", "-1", "--yes"]):
        code, _, err = _cli(project, database_url, capsys, *command)
        assert code == 4, (command, err)
        assert _one_line(err) == f"umbau: error: {message}"
    code, _, err = _cli(project, database_url, capsys, "stamp", "r1")
    assert code == 4 and "umbau stamp --purge r1" in _one_line(err)
    assert _version(database_url) == ["deadbeef"]


def test_debug_prints_the_traceback_and_keeps_the_exit_code(
        tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    project = linear_project(tmp_path, 1)
    code, _, err = _cli(project, database_url, capsys, "--debug", "upgrade", "nope")
    assert code == 9
    assert "Traceback (most recent call last)" in err and "UnknownRevision" in err
    assert err.strip().splitlines()[-1].startswith("umbau: error: unknown revision 'nope'")
    code, _, err = _cli(project, database_url, capsys, "upgrade", "nope", "--debug")
    assert code == 9 and "Traceback" in err


def test_errors_are_json_with_format_json(tmp_path: Path, database_url: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    project = linear_project(tmp_path, 1)
    assert _cli(project, database_url, capsys, "upgrade")[0] == 0
    cases = [(["upgrade", "nope"], "UnknownRevision", 9),
             (["show", "nope"], "UnknownRevision", 9),
             (["downgrade", "base", "--format=json"], "ConfirmationRequired", 10),
             (["history", "--limit", "x"], "UsageError", 2),
             (["stamp", "nope"], "UnknownRevision", 9)]
    for args, kind, exit_code in cases:
        fmt = [] if "--format=json" in args else ["--format", "json"]
        code, out, err = _cli(project, database_url, capsys, *args, *fmt)
        assert code == exit_code, (args, out, err)
        error = json.loads(out)["error"]
        assert error["type"] == kind and error["exit_code"] == exit_code
        assert error["message"] and "\n" not in error["message"].strip()
        assert "umbau: error" not in err
    code, out, _ = _cli(project, "postgresql://nobody@127.0.0.1:1/x", capsys,
                        "status", "--format", "json")
    assert code == 5 and json.loads(out)["error"]["type"] == "DatabaseUnreachable"


def test_global_options_after_the_command(tmp_path: Path, database_url: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    project = linear_project(tmp_path, 1)
    code = main(["upgrade", "--lock-wait", "1s", "--config", str(project / "umbau.toml"),
                 "--database-url=" + database_url, "--retries", "3"])
    capsys.readouterr()
    assert code == 0 and _version(database_url) == ["r1"]
    code = main(["config", "--config", str(project / "umbau.toml"), "--lock-wait", "7s",
                 "--format", "json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["settings"]["lock_wait"]["value"] == "7s"
    assert hoist_global_options(["upgrade", "-1", "--retries", "2"]) == \
        ["--retries", "2", "upgrade", "-1"]
    assert hoist_global_options(["backup", "--format", "custom"]) == \
        ["backup", "--format", "custom"]  # the command's own option stays
    assert hoist_global_options(["upgrade", "--", "--debug"]) == ["upgrade", "--", "--debug"]


def test_init_metadata_after_the_command(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["init", str(tmp_path), "--metadata", "app.models:Base.metadata"])
    capsys.readouterr()
    assert code == 0
    assert "from app.models import Base" in (tmp_path / "migrations" / "env.py").read_text() \
        or "app.models" in (tmp_path / "migrations" / "env.py").read_text()


def test_real_process_debug_and_json(tmp_path: Path, database_url: str) -> None:
    project = linear_project(tmp_path, 1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("UMBAU_")}
    env["UMBAU_DATABASE_URL"] = database_url
    done = subprocess.run([sys.executable, "-m", "umbau", "upgrade", "nope", "--format",
                           "json"], cwd=project, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 9 and json.loads(done.stdout)["error"]["exit_code"] == 9


def test_usage_errors_are_one_line_naming_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    for argv, words in ((["upgrade", "--phase", "bogus"], "Invalid value for '--phase'"),
                        (["nosuch"], "No such command 'nosuch'")):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("umbau: error: "), err
        assert words in err and "--help`)" in err
