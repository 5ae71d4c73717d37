"""kill -9 in the middle of a release, then a rerun; two operators at once."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import add_revision
from release_support import release_project, release_rows, settings, umbau, write_plan
from sqlalchemy import text

from umbau.errors import ConfirmationRequired, ReleaseBusy, ReleasePlanError
from umbau.postgres.connect import connect
from umbau.release import release_status, run_release

pytestmark = [pytest.mark.db, pytest.mark.slow]

SLEEPY = """
STEP
kind = "command"
name = "first"
run = "echo first >> steps.log"
STEP
kind = "command"
name = "sleepy"
run = "echo $$ > sleepy.pid; echo sleepy >> steps.log; if [ ! -f resumed ]; then sleep 60; fi"
STEP
kind = "migrate"
STEP
kind = "command"
name = "last"
run = "echo last >> steps.log"
"""


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def running_step(url: str) -> str | None:
    with connect(url) as conn:
        if not conn.execute(text("SELECT to_regclass('umbau_releases')")).scalar():
            return None
        found = conn.execute(text("SELECT step_name FROM umbau_releases "
                                  "WHERE outcome = 'running'")).scalar()
        return None if found is None else str(found)


def gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def test_kill_9_in_a_command_step_then_rerun(tmp_path: Path, database_url: str) -> None:
    folder = release_project(tmp_path, database_url)
    write_plan(folder, SLEEPY)
    proc = umbau(folder, database_url, "release", "run", "1.1.0")
    wait_for(lambda: (folder / "sleepy.pid").exists() and running_step(database_url)
             == "sleepy", "the sleepy step")
    wait_for(lambda: (folder / "sleepy.pid").read_text().strip().isdigit(), "the pid")
    pgid = int((folder / "sleepy.pid").read_text())
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    wait_for(lambda: gone(pgid), "the command's process group to die with umbau", 10)
    status = release_status(settings(folder, database_url))
    assert status.runs[0]["state"] == "interrupted" and status.lock_holder is None
    # a command is not safe to run twice without asking
    with pytest.raises(ConfirmationRequired, match="sleepy"):
        run_release(settings(folder, database_url), "1.1.0")
    # nor is a plan that changed under the interrupted run
    plan = folder / "releases.toml"
    original = plan.read_text()
    plan.write_text(original.replace("echo last", "echo later"))
    with pytest.raises(ReleasePlanError, match="the plan changed since the interrupted run"):
        run_release(settings(folder, database_url), "1.1.0", assume_yes=True)
    # a plan-level setting counts too: the rollback method changes what a failure does
    plan.write_text(original.replace('from = "1.0.0"', 'from = "1.0.0"\nrollback = "restore"'))
    with pytest.raises(ReleasePlanError, match="the plan changed since the interrupted run"):
        run_release(settings(folder, database_url), "1.1.0", assume_yes=True)
    plan.write_text(original)
    asked: list[str] = []
    (folder / "resumed").touch()
    result = run_release(settings(folder, database_url), "1.1.0",
                         decide=lambda step: asked.append(step.name) or "resume")
    assert asked == ["sleepy"]
    assert result.outcome == "released" and result.resumed
    assert (folder / "steps.log").read_text() == "first\nsleepy\nsleepy\nlast\n"
    assert [s.outcome for s in result.steps] == ["already done", "done", "done", "done"]
    assert release_rows(database_url) == [
        ("first", "command", "done"), ("sleepy", "command", "skipped"),
        ("sleepy", "command", "done"), ("migrate", "migrate", "done"),
        ("last", "command", "done")]
    assert run_release(settings(folder, database_url), "1.1.0").outcome == "already released"


def test_kill_9_then_rollback_at_the_operators_choice(tmp_path: Path,
                                                      database_url: str) -> None:
    folder = release_project(tmp_path, database_url)
    write_plan(folder, SLEEPY.replace('run = "echo first >> steps.log"',
                                      'run = "echo first >> steps.log"\n'
                                      'undo = "echo undo-first >> steps.log"'))
    proc = umbau(folder, database_url, "release", "run", "1.1.0")
    wait_for(lambda: running_step(database_url) == "sleepy", "the sleepy step")
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    from umbau.errors import ReleaseFailed

    with pytest.raises(ReleaseFailed, match="interrupted"):
        run_release(settings(folder, database_url), "1.1.0", decide=lambda step: "rollback")
    assert (folder / "steps.log").read_text() == "first\nsleepy\nundo-first\n"
    assert release_status(settings(folder, database_url)).runs[0]["state"] == "rolled back"


def test_kill_9_during_migrate_then_rerun_without_asking(tmp_path: Path,
                                                         database_url: str) -> None:
    folder = release_project(tmp_path, database_url)
    marker = folder / "sleep"
    add_revision(folder, "r4", "r3",
                 upgrade=f"import os\nif os.path.exists({str(marker)!r}):\n"
                         "    op.execute('SELECT pg_sleep(60)')\n"
                         "op.create_table('slow', sa.Column('id', sa.Integer))",
                 downgrade="op.drop_table('slow')")
    write_plan(folder, SLEEPY)
    (folder / "resumed").touch()  # the sleepy command does not sleep, r4 does
    marker.touch()
    proc = umbau(folder, database_url, "release", "run", "1.1.0")
    with connect(database_url, autocommit=True) as conn:
        wait_for(lambda: bool(conn.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' "
            "AND pid <> pg_backend_pid()")).scalar()), "r4 to sleep")
    assert running_step(database_url) == "migrate"
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    marker.unlink()
    result = run_release(settings(folder, database_url), "1.1.0")  # migrate: no question
    assert result.outcome == "released"
    assert (folder / "steps.log").read_text() == "first\nsleepy\nlast\n"
    with connect(database_url) as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "r4"
    assert [r[2] for r in release_rows(database_url)] == [
        "done", "done", "skipped", "done", "done"]


def test_two_operators_never_both_run(tmp_path: Path, database_url: str) -> None:
    folder = release_project(tmp_path, database_url)
    write_plan(folder, SLEEPY.replace("sleep 60", "sleep 3"))
    proc = umbau(folder, database_url, "release", "run", "1.1.0")
    wait_for(lambda: running_step(database_url) == "sleepy", "the sleepy step")
    with pytest.raises(ReleaseBusy) as caught:
        run_release(settings(folder, database_url), "1.1.0", assume_yes=True)
    assert caught.value.exit_code == 38
    assert f"pid {proc.pid}" in str(caught.value) and "sleepy" in str(caught.value)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert (folder / "steps.log").read_text() == "first\nsleepy\nlast\n"


def test_kill_9_during_the_rollback_then_the_rerun_finishes_it(tmp_path: Path,
                                                              database_url: str) -> None:
    from umbau.errors import ReleaseFailed

    folder = release_project(tmp_path, database_url)
    write_plan(folder, """
STEP
kind = "command"
name = "a"
run = "echo a >> steps.log"
undo = "echo undo-a >> steps.log; if [ ! -f resumed ]; then sleep 60; fi"
STEP
kind = "migrate"
STEP
kind = "command"
name = "b"
run = "echo b >> steps.log"
undo = "echo undo-b >> steps.log"
STEP
kind = "smoke"
run = "exit 1"
""")
    proc = umbau(folder, database_url, "release", "run", "1.1.0")
    log = folder / "steps.log"
    wait_for(lambda: log.exists() and "undo-a" in log.read_text(), "the undo of a")
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert release_status(settings(folder, database_url)).runs[0]["state"] == "rolling back"
    (folder / "resumed").touch()
    with pytest.raises(ReleaseFailed, match="step 'smoke'"):
        run_release(settings(folder, database_url), "1.1.0")
    assert log.read_text() == "a\nb\nundo-b\nundo-a\nundo-a\n"
    assert [r[2] for r in release_rows(database_url)] == ["undone"] * 3 + ["failed"]
    with connect(database_url) as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "r1"
    # rolled back: the next run is a new one
    assert release_status(settings(folder, database_url)).runs[0]["state"] == "rolled back"


def test_sigterm_during_the_rollback_says_the_rerun_finishes_it(tmp_path: Path,
                                                                database_url: str) -> None:
    folder = release_project(tmp_path, database_url)
    write_plan(folder, """
STEP
kind = "command"
name = "a"
run = "echo a >> steps.log"
undo = "echo undo-a >> steps.log; if [ ! -f resumed ]; then sleep 60; fi"
STEP
kind = "smoke"
run = "exit 1"
""")
    proc = umbau(folder, database_url, "release", "run", "1.1.0")
    log = folder / "steps.log"
    wait_for(lambda: log.exists() and "undo-a" in log.read_text(), "the undo of a")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert ("release 1.1.0 interrupted while rolling back (undoing step 'a'): rerun "
            "`umbau release run 1.1.0` to finish the rollback") in err
    assert release_status(settings(folder, database_url)).runs[0]["state"] == "rolling back"


def test_ctrl_c_says_the_release_was_interrupted(tmp_path: Path, database_url: str) -> None:
    folder = release_project(tmp_path, database_url)
    write_plan(folder, SLEEPY)
    proc = umbau(folder, database_url, "release", "run", "1.1.0")
    pid_file = folder / "sleepy.pid"
    wait_for(lambda: running_step(database_url) == "sleepy" and pid_file.exists()
             and pid_file.read_text().strip().isdigit(), "the sleepy step")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert ("interrupted: release 1.1.0 interrupted in step 'sleepy': rerun `umbau release "
            "run 1.1.0` to resume or roll back") in err
    assert "rolled back" not in err
    assert release_status(settings(folder, database_url)).runs[0]["state"] == "interrupted"


def test_sigterm_stops_the_step_and_the_rerun_resumes(tmp_path: Path, database_url: str) -> None:
    folder = release_project(tmp_path, database_url)
    write_plan(folder, SLEEPY)
    proc = umbau(folder, database_url, "release", "run", "1.1.0")
    pid_file = folder / "sleepy.pid"
    wait_for(lambda: running_step(database_url) == "sleepy" and pid_file.exists()
             and pid_file.read_text().strip().isdigit(), "the sleepy step")
    pgid = int((folder / "sleepy.pid").read_text())
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert ("terminated (SIGTERM): release 1.1.0 interrupted in step 'sleepy': rerun "
            "`umbau release run 1.1.0` to resume or roll back") in err
    assert "rolled back" not in err  # nothing was: the step stays running
    wait_for(lambda: gone(pgid), "the command's process group", 10)
    assert release_status(settings(folder, database_url)).runs[0]["state"] == "interrupted"
    (folder / "resumed").touch()
    proc = umbau(folder, database_url, "release", "run", "1.1.0", "--yes")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert (folder / "steps.log").read_text() == "first\nsleepy\nsleepy\nlast\n"
