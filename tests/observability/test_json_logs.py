"""``--log-format json`` through the real CLI: every stderr line is a JSON object, for an
upgrade, a backfill and a failure; and the option costs nothing when not given."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import add_revision, linear_project

from umbau.cli import main
from umbau.errors import EXIT_DATABASE, EXIT_MIGRATION
from umbau.postgres.driver import connect_raw

pytestmark = pytest.mark.db

TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def lines(err: str) -> list[dict[str, Any]]:
    """Every stderr line parsed; fails on a line that is not JSON."""
    parsed = [json.loads(line) for line in err.splitlines() if line.strip()]
    for record in parsed:
        assert TS.fullmatch(record["ts"]) and record["logger"] == "umbau", record
        assert record["level"] in {"info", "warning", "error"}
    return parsed


def test_upgrade_logs_one_json_line_per_event(tmp_path: Path, database_url: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    project = linear_project(tmp_path, 2)
    code = main(["--config", str(project / "umbau.toml"), "--database-url", database_url,
                 "upgrade", "--log-format", "json"])
    out, err = capsys.readouterr()
    assert code == 0 and "now at r2" in out
    records = lines(err)
    kinds = [r["kind"] for r in records]
    assert kinds[:2] == ["lock_acquired", "plan"]
    assert kinds.count("step_start") == 2 and kinds.count("step_done") == 2
    done = [r for r in records if r["kind"] == "step_done"]
    assert [r["revision"] for r in done] == ["r1", "r2"]
    assert all(r["command"] == "upgrade" and r["direction"] == "upgrade"
               and r["duration"] >= 0 for r in done)


def test_json_logs_and_json_output_together(tmp_path: Path, database_url: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    project = linear_project(tmp_path, 1)
    code = main(["--config", str(project / "umbau.toml"), "--database-url", database_url,
                 "--log-format", "json", "upgrade", "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0 and json.loads(out)["after"] == ["r1"]
    assert "step_done" in [r["kind"] for r in lines(err)]


def test_a_failure_logs_step_failed_and_the_error_as_json(
        tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    project = linear_project(tmp_path, 1)
    add_revision(project, "r2", "r1", upgrade='op.execute("SELECT * FROM no_such_table")')
    code = main(["--config", str(project / "umbau.toml"), "--database-url", database_url,
                 "upgrade", "--log-format", "json"])
    _, err = capsys.readouterr()
    assert code == EXIT_MIGRATION
    records = lines(err)
    failed = [r for r in records if r["kind"] == "step_failed"]
    assert len(failed) == 1 and failed[0]["revision"] == "r2"
    assert failed[0]["level"] == "error" and failed[0]["data"] == {"error_type":
                                                                   "MigrationFailed"}
    assert "no_such_table" in failed[0]["error"]
    last = records[-1]
    assert last["kind"] == "error" and last["error"]["exit_code"] == EXIT_MIGRATION
    assert last["error"]["type"] == "MigrationFailed"
    assert "umbau: error" not in err  # the text line is replaced, not repeated


def test_the_error_line_masks_the_password(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--database-url", "postgresql://app:s3cret@127.0.0.1:1/db", "status",
                 "--log-format", "json", "--script-location", "nowhere"])
    err = capsys.readouterr().err
    assert code != 0 and "s3cret" not in err
    record = lines(err)[-1]
    assert record["kind"] == "error" and record["error"]["exit_code"] == code


def test_backfill_logs_progress_as_json(tmp_path: Path, database_url: str,
                                        monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    with connect_raw(database_url) as conn:
        conn.execute("CREATE TABLE items (id bigint PRIMARY KEY, n int NOT NULL DEFAULT 0)")
        conn.execute("INSERT INTO items SELECT g FROM generate_series(1, 3000) g")
    (tmp_path / "bf_json.py").write_text(
        "from umbau.backfill import Backfill\n"
        "bump = Backfill(name='bump', table='items', set={'n': 'n + 1'}, batch_size=500,\n"
        "                max_batch_size=500, min_batch_size=500)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    code = main(["--database-url", database_url, "--log-format", "json",
                 "backfill", "run", "bf_json:bump"])
    _, err = capsys.readouterr()
    assert code == 0
    progress = [r for r in lines(err) if r["kind"] == "backfill_progress"]
    assert len(progress) >= 6  # one per batch: no 5-second throttle for log lines
    assert {r["command"] for r in progress} == {"backfill run"}
    assert progress[-1]["done"] == 3000 and progress[-1]["total"] == 3000
    assert progress[-1]["unit"] == "rows" and progress[-1]["message"] == "backfill bump"
    assert progress[-1]["data"]["workers"] == 1


def test_no_prometheus_without_a_metrics_option(tmp_path: Path) -> None:
    """`umbau --help` and `umbau status` stay light: prometheus_client is not imported."""
    code = ("import sys\n"
            "from umbau.cli import main\n"
            "main(['--help'])\n"
            "main(['--database-url', 'postgresql://u@127.0.0.1:1/x', '--log-format', 'json',"
            " 'status'])\n"
            "print('prometheus_client' in sys.modules, 'umbau.observability.metrics' in "
            "sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, check=True)
    assert done.stdout.splitlines()[-1] == "False False"


def test_unreachable_database_with_metrics_textfile(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]
                                                    ) -> None:
    """A command that fails still leaves its metrics (exit code) in the textfile."""
    project = linear_project(tmp_path / "p", 1)
    target = tmp_path / "u.prom"
    code = main(["--config", str(project / "umbau.toml"), "--database-url",
                 "postgresql://app:pw@127.0.0.1:1/db", "upgrade",
                 "--metrics-textfile", str(target)])
    assert code == EXIT_DATABASE
    assert f'umbau_command_exit_code{{command="upgrade"}} {EXIT_DATABASE}.0' \
        in target.read_text()


RELEASE_PLAN = """
STEP
kind = "command"
name = "stop services"
run = "echo stopped >> services.log"
undo = "echo started >> services.log"
STEP
kind = "migrate"
STEP
kind = "smoke"
run = "exit 3"
"""


def test_a_release_rollback_logs_warnings_and_errors(
        tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A real release whose smoke test fails: the failure is an error, the rollback's
    stages warnings, as docs/observability.md says."""
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "release"))
    from release_support import release_project, write_plan

    folder = release_project(tmp_path, database_url)
    write_plan(folder, RELEASE_PLAN)
    code = main(["--config", str(folder / "umbau.toml"), "--database-url", database_url,
                 "release", "run", "1.1.0", "--log-format", "json"])
    records = lines(capsys.readouterr().err)
    assert code != 0
    stages = [r for r in records if r["kind"] == "stage"]
    rollback = [r for r in stages if "roll" in r["message"]]
    assert rollback and all(r["level"] == "warning" for r in rollback), stages
    assert all(r["level"] == "info" for r in stages if r not in rollback)
    steps = {r["data"]["step"]: r for r in records if r["kind"] == "release_step_done"}
    outcomes = {name: (r["data"]["outcome"], r["level"]) for name, r in steps.items()}
    assert outcomes == {"stop services": ("done", "info"), "migrate": ("done", "info"),
                        "smoke": ("failed", "error")}
    assert [r["message"] for r in rollback] == [
        "rolling back release 1.1.0: step 'smoke' failed", "rollback: undo 'smoke'",
        "rollback: undo 'migrate'", "rollback: undo 'stop services'"]
    assert records[-1]["kind"] == "error" and records[-1]["level"] == "error"


@pytest.mark.parametrize("args", [
    ["release", "run", "--log-format", "json"],               # VERSION missing
    ["--log-format", "json", "release", "run", "--nope", "1.1.0"],
    ["--log-format=json", "--no-such-global", "status"],     # before the group's callback
    ["--log-format", "json", "no-such-command"],
])
def test_usage_errors_are_json_lines_too(args: list[str],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    code = main(args)
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    records = lines(err)
    assert len(records) == 1, err
    assert records[0]["kind"] == "error" and records[0]["level"] == "error"
    assert records[0]["error"]["type"] == "UsageError"
    assert records[0]["error"]["exit_code"] == 2 and "--help" in records[0]["error"]["message"]
