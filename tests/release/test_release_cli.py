"""umbau release plan | run | status | history and umbau config migrate-env, in-process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from release_support import release_project, release_rows, snapshot, write_plan

from umbau.cli import main

pytestmark = pytest.mark.db

PLAN = """
STEP
kind = "backup"
STEP
kind = "command"
name = "stop services"
run = "echo stopped >> services.log"
undo = "echo started >> services.log"
STEP
kind = "migrate"
STEP
kind = "env"
file = ".env"
rename = { ETSY_SHOP_ID = "ETSY_DEFAULT_SHOP_ID" }
remove = ["LEGACY_MODE"]
add = { ENABLE_WEBHOOKS = true }
require = ["DATABASE_URL"]
STEP
kind = "smoke"
run = "grep -q ENABLE_WEBHOOKS .env"
"""


def cli(folder: Path, url: str, *args: str) -> int:
    return main(["--config", str(folder / "umbau.toml"), "--database-url", url, *args])


def test_plan_run_status_history(tmp_path: Path, database_url: str,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    folder = release_project(tmp_path, database_url)
    write_plan(folder, PLAN)
    assert cli(folder, database_url, "release", "plan", "1.1.0") == 0
    out = capsys.readouterr().out
    assert out.startswith("# Release 1.1.0 (from 1.0.0)")
    assert "ETSY_SHOP_ID → ETSY_DEFAULT_SHOP_ID" in out
    assert cli(folder, database_url, "release", "plan", "1.1.0", "--format", "json") == 0
    assert json.loads(capsys.readouterr().out)["pending"] == ["r2", "r3"]

    assert cli(folder, database_url, "release", "run", "1.1.0", "--dry-run",
               "--format", "json") == 0
    dry = json.loads(capsys.readouterr().out)
    assert dry["outcome"] == "dry run" and {s["outcome"] for s in dry["steps"]} == {"planned"}
    assert not (folder / "services.log").exists()

    assert cli(folder, database_url, "release", "run", "1.1.0") == 0
    captured = capsys.readouterr()
    assert "release 1.1.0: released" in captured.out
    assert "-> stop services" in captured.err and "stop services: done" in captured.err
    assert "ENABLE_WEBHOOKS=true" in (folder / ".env").read_text()

    assert cli(folder, database_url, "release", "run", "1.1.0", "--format", "json") == 0
    assert json.loads(capsys.readouterr().out)["outcome"] == "already released"
    assert cli(folder, database_url, "release", "status", "--format", "json") == 0
    status = json.loads(capsys.readouterr().out)
    assert status["runs"][0]["state"] == "released" and len(status["steps"]) == 5
    assert cli(folder, database_url, "release", "status") == 0
    assert "released" in capsys.readouterr().out
    assert cli(folder, database_url, "release", "history", "--format", "json",
               "--limit", "2") == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [r["step"] for r in rows] == ["smoke", "env"]


def test_failed_release_exit_35_with_the_steps(tmp_path: Path, database_url: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    folder = release_project(tmp_path, database_url)
    write_plan(folder, PLAN.replace("grep -q ENABLE_WEBHOOKS .env", "exit 4"))
    before = snapshot(database_url, folder)
    assert cli(folder, database_url, "release", "run", "1.1.0", "--format", "json") == 35
    data = json.loads(capsys.readouterr().out)
    assert data["error"]["exit_code"] == 35 and data["outcome"] == "rolled back"
    assert [s["outcome"] for s in data["steps"]] == ["undone"] * 4 + ["failed"]
    assert snapshot(database_url, folder) == before


def test_a_rollback_that_fails_is_exit_36_naming_what_is_left(
        tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    folder = release_project(tmp_path, database_url)
    write_plan(folder, PLAN.replace('undo = "echo started >> services.log"',
                                    'undo = "echo cannot start >&2; exit 1"')
               .replace("grep -q ENABLE_WEBHOOKS .env", "exit 4"))
    assert cli(folder, database_url, "release", "run", "1.1.0") == 36
    err = capsys.readouterr().err
    line = next(e for e in err.splitlines() if e.startswith("umbau: error:"))
    assert "the rollback did not finish: stop services (command)" in line
    assert "exited 1: cannot start" in line and "fix these by hand" in line
    outcomes = dict((name, outcome) for name, _, outcome in release_rows(database_url))
    assert outcomes["stop services"] == "undo_failed" and outcomes["migrate"] == "undone"
    assert cli(folder, database_url, "release", "status", "--format", "json") == 0
    assert json.loads(capsys.readouterr().out)["runs"][0]["state"] == "rollback failed"


def test_bad_plan_exit_37(tmp_path: Path, database_url: str,
                          capsys: pytest.CaptureFixture[str]) -> None:
    folder = release_project(tmp_path, database_url)
    write_plan(folder, PLAN.replace('kind = "smoke"', 'kind = "smoke"\nretries = 3'))
    assert cli(folder, database_url, "release", "run", "1.1.0") == 37
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "step 5 (smoke): unknown key(s) retries" in err


def test_config_migrate_env(tmp_path: Path, database_url: str,
                            capsys: pytest.CaptureFixture[str]) -> None:
    folder = release_project(tmp_path, database_url)
    write_plan(folder, PLAN)
    env = folder / ".env"
    before = env.read_text()
    assert cli(folder, database_url, "config", "migrate-env", str(env), "--release", "1.1.0",
               "--dry-run") == 0
    assert "renamed ETSY_SHOP_ID → ETSY_DEFAULT_SHOP_ID" in capsys.readouterr().out
    assert env.read_text() == before
    assert cli(folder, database_url, "config", "migrate-env", str(env), "--release", "1.1.0",
               "--format", "json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["written"] and Path(data["backup_path"]).read_text() == before
    assert "ETSY_DEFAULT_SHOP_ID=42" in env.read_text()
    assert cli(folder, database_url, "config", "migrate-env", str(env), "--release",
               "9.9") == 37
    assert cli(folder, database_url, "config", "--format", "json") == 0
    assert "settings" in json.loads(capsys.readouterr().out)
