"""What a rollback reports: health re-checks that fail, the order of the undos."""

from __future__ import annotations

import http.server
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from release_support import release_project, release_rows, settings, write_plan

from umbau.errors import ReleaseFailed, ReleaseRollbackFailed
from umbau.release import release_status, run_release

pytestmark = pytest.mark.db


@pytest.fixture
def flaky_health(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """200 until the file ``broken`` exists in tmp_path, then 503."""
    flag = tmp_path / "broken"

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(503 if flag.exists() else 200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/health", flag
    server.shutdown()
    server.server_close()


def test_a_failed_health_recheck_is_rollback_failed(
        tmp_path: Path, database_url: str, flaky_health: tuple[str, Path]) -> None:
    url, flag = flaky_health
    folder = release_project(tmp_path, database_url)
    write_plan(folder, f"""
STEP
kind = "migrate"
STEP
kind = "health"
url = "{url}"
interval = "100ms"
deadline = "1s"
STEP
kind = "smoke"
run = "touch {flag}; exit 4"
""")
    with pytest.raises(ReleaseRollbackFailed) as caught:
        run_release(settings(folder, database_url), "1.1.0")
    assert caught.value.exit_code == 36
    assert "health after the rollback" in str(caught.value)
    assert release_rows(database_url) == [
        ("migrate", "migrate", "undone"), ("health", "health", "undo_failed"),
        ("smoke", "smoke", "failed")]
    status = release_status(settings(folder, database_url))
    assert status.runs[0]["state"] == "rollback failed"
    result = caught.value.result
    assert result is not None
    health = next(s for s in result.steps if s.name == "health")
    assert health.outcome == "undo_failed"
    assert health.detail["undo"] == "checked again after the rollback: failed"


def test_the_summary_lists_the_undos_in_the_order_they_ran(
        tmp_path: Path, database_url: str) -> None:
    folder = release_project(tmp_path, database_url)
    write_plan(folder, """
STEP
kind = "command"
name = "one"
run = "true"
undo = "echo undo-one >> undo.log"
STEP
kind = "migrate"
STEP
kind = "command"
name = "two"
run = "true"
undo = "echo undo-two >> undo.log"
STEP
kind = "command"
name = "three"
run = "true"
undo = "echo undo-three >> undo.log"
STEP
kind = "smoke"
run = "exit 2"
""")
    with pytest.raises(ReleaseFailed) as caught:
        run_release(settings(folder, database_url), "1.1.0")
    assert (folder / "undo.log").read_text() == "undo-three\nundo-two\nundo-one\n"
    assert ("rolled back (ran `echo undo-three >> undo.log`; ran `echo undo-two >> "
            "undo.log`; downgraded to r1; ran `echo undo-one >> undo.log`)") \
        in str(caught.value)


def test_a_failed_step_has_its_seconds_in_text_and_json(
        tmp_path: Path, database_url: str) -> None:
    import json

    from release_support import umbau

    folder = release_project(tmp_path, database_url)
    write_plan(folder, 'STEP\nkind = "command"\nname = "slow"\nrun = "sleep 0.3; exit 5"\n')
    proc = umbau(folder, database_url, "release", "run", "1.1.0", "--format", "json")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 35, err
    step = json.loads(out)["steps"][0]
    assert step["outcome"] == "failed" and step["seconds"] >= 0.3
    write_plan(folder, 'STEP\nkind = "command"\nname = "slow"\nrun = "sleep 0.3; exit 5"\n',
               version="1.2.0")
    proc = umbau(folder, database_url, "release", "run", "1.2.0")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 35, err
    row = next(line for line in out.splitlines() if "slow" in line and "failed" in line)
    assert re.search(r"failed\s+\S*\s*0\.[3-9]|failed\s+\S*\s*[1-9]\.\d", row), row


def test_plan_option_naming_a_folder_says_so(tmp_path: Path, database_url: str) -> None:
    from release_support import umbau

    folder = release_project(tmp_path, database_url)
    proc = umbau(folder, database_url, "release", "run", "1.1.0", "--plan", str(tmp_path))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 37, err
    assert f"plan file {tmp_path} is a folder: give the path of a releases.toml" in err


def test_a_manual_restore_after_exit_36_starts_a_new_run(
        tmp_path: Path, database_url: str) -> None:
    """`umbau restore` of the pre-release backup rewinds umbau_releases to "backup
    running": the next run must not resume that run (it went further), but start anew."""
    from release_support import umbau

    folder = release_project(tmp_path, database_url)
    write_plan(folder, """
STEP
kind = "preflight"
STEP
kind = "backup"
STEP
kind = "migrate"
STEP
kind = "command"
name = "notify"
run = "echo run >> notify.log"
undo = "test -f ok"
STEP
kind = "smoke"
run = "test -f ok"
""")
    with pytest.raises(ReleaseRollbackFailed) as caught:
        run_release(settings(folder, database_url), "1.1.0")
    first = caught.value.result
    assert first is not None
    backup = next(s for s in first.steps if s.kind == "backup").detail["backup_path"]
    proc = umbau(folder, database_url, "restore", backup, "--clean", "--yes")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    # the restored table says "backup running": the record was rewound
    assert ("backup", "backup", "running") in release_rows(database_url)
    status = release_status(settings(folder, database_url))
    assert status.runs[0]["state"] == "rewound by a restore"
    (folder / "ok").touch()
    stages: list[str] = []
    result = run_release(settings(folder, database_url), "1.1.0",
                         on_event=lambda e: stages.append(e.message or ""))
    assert result.outcome == "released" and not result.resumed
    assert result.run_id != first.run_id
    assert [s.outcome for s in result.steps] == ["done"] * 5  # preflight ran again too
    assert any("is not resumed" in m and "restore" in m for m in stages)
    rows = release_rows(database_url)
    assert rows[:2] == [("preflight", "preflight", "done"), ("backup", "backup", "skipped")]
    assert release_status(settings(folder, database_url)).runs[0]["state"] == "released"
