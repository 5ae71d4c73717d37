"""The CLI in-process through main(argv): exit codes, text and JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import add_revision, linear_project

from umbau.cli import main

pytestmark = pytest.mark.db


def run(project: Path, url: str, capsys: pytest.CaptureFixture[str],
        *args: str) -> tuple[int, str, str]:
    code = main(["--config", str(project / "umbau.toml"), "--database-url", url, *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_full_cycle_with_json(tmp_path: Path, database_url: str,
                              capsys: pytest.CaptureFixture[str]) -> None:
    project = linear_project(tmp_path, 3)
    code, out, _ = run(project, database_url, capsys, "check", "--format", "json")
    assert code == 3 and json.loads(out)["state"] == "pending"
    code, out, _ = run(project, database_url, capsys, "status", "--format", "json")
    data = json.loads(out)
    assert [p["revision"] for p in data["pending"]] == ["r1", "r2", "r3"]
    code, out, err = run(project, database_url, capsys, "upgrade", "r2")
    assert code == 0 and "now at r2" in out and "upgrade   r1" in err
    code, out, _ = run(project, database_url, capsys, "upgrade", "--format", "json")
    assert code == 0 and [s["revision"] for s in json.loads(out)["steps"]] == ["r3"]
    code, out, _ = run(project, database_url, capsys, "check")
    assert code == 0 and "up-to-date" in out
    code, out, _ = run(project, database_url, capsys, "history", "--runs", "--format", "json")
    assert [r["revision"] for r in json.loads(out)["runs"]] == ["r3", "r2", "r1"]
    code, out, _ = run(project, database_url, capsys, "current")
    assert code == 0 and out.startswith("r3")
    code, out, _ = run(project, database_url, capsys, "heads", "--format", "json")
    assert json.loads(out)["heads"][0]["revision"] == "r3"
    code, out, _ = run(project, database_url, capsys, "show", "r2")
    assert code == 0 and "applied  : yes" in out
    code, out, err = run(project, database_url, capsys, "downgrade", "-1")
    assert code == 10 and "drop table t3" in err and "--yes" in err
    code, out, _ = run(project, database_url, capsys, "downgrade", "-1", "--yes")
    assert code == 0 and "now at r2" in out
    code, out, _ = run(project, database_url, capsys, "doctor")
    assert code == 0, out
    code, out, _ = run(project, database_url, capsys, "upgrade", "--sql", "r2:r3")
    assert code == 0 and "CREATE TABLE t3" in out and "CREATE TABLE t1" not in out


def test_unknown_target_exit_9(tmp_path: Path, database_url: str,
                               capsys: pytest.CaptureFixture[str]) -> None:
    project = linear_project(tmp_path, 2)
    code, _, err = run(project, database_url, capsys, "upgrade", "r7")
    assert code == 9 and "unknown revision 'r7'" in err


def test_two_heads_check_4_and_merge(tmp_path: Path, database_url: str,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    project = linear_project(tmp_path, 1)
    add_revision(project, "a1", "r1")
    add_revision(project, "b1", "r1")
    code, out, _ = run(project, database_url, capsys, "check")
    assert code == 4 and "umbau merge" in out
    code, _, err = run(project, database_url, capsys, "upgrade")
    assert code == 4 and "a1" in err and "b1" in err
    code, out, _ = run(project, database_url, capsys, "doctor", "--format", "json")
    assert code == 1 and json.loads(out)["findings"][0]["code"] == "multiple-heads"
    code, out, _ = run(project, database_url, capsys, "merge", "-m", "join")
    assert code == 0 and "created merge" in out
    code, _, _ = run(project, database_url, capsys, "upgrade", "-q")
    assert code == 0


def test_config_and_new(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = linear_project(tmp_path, 1)
    code = main(["--config", str(project / "umbau.toml"), "--database-url",
                 "postgresql://u:pw@h/db", "config", "--format", "json"])
    out, _ = capsys.readouterr()
    data = json.loads(out)
    assert code == 0 and data["settings"]["database_url"]["value"] == "postgresql://u:***@h/db"
    assert data["settings"]["database_url"]["source"] == "flag --database-url"
    code = main(["--config", str(project / "umbau.toml"), "new", "Add Invoice Due-Date!"])
    out, _ = capsys.readouterr()
    assert code == 0
    created = Path(out.split(": ", 1)[1].strip())
    assert created.name.endswith("_add_invoice_due_date.py")


def test_python_dash_m_and_version() -> None:
    done = subprocess.run([sys.executable, "-m", "umbau", "--version"], capture_output=True,
                          text=True, check=True)
    assert "umbau" in done.stdout


def test_an_offline_lint_and_version_do_not_import_the_driver() -> None:
    """The CLI installs its SIGTERM handler (umbau.interrupts) without psycopg: commands
    that need no server do not pay for the driver's import."""
    etsy = Path(__file__).resolve().parents[2] / "examples" / "etsy_sevdesk"
    probe = ("import sys\nfrom umbau.cli import main\ncodes = [main(['--version']), "
             "main(['lint', '--offline', '--format', 'json'])]\n"
             "print(codes, 'psycopg' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, cwd=etsy).stdout
    assert out.strip().splitlines()[-1] == "[0, 0] False"
