"""Real processes and real signals (issue 11, items 4 and 5): SIGINT/SIGTERM to the
parent of --workers N, kill -9 of the parent, --restart while another process runs the
backfill, and a run whose state vanishes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.backfill.conftest import fill, scalar
from umbau.backfill import backfill_status
from umbau.cli import main
from umbau.errors import EXIT_BACKFILL_IN_USE, EXIT_BACKFILL_STATE_LOST
from umbau.postgres.driver import connect_raw
from umbau.settings import Settings

ROWS = 20_000
DEFS = '''
from umbau.backfill import Backfill

slow = Backfill(name="slow", table="items", set={"n": "n + 1"}, verify="n = 1",
                batch_size=100, max_batch_size=100, min_batch_size=100, pause=0.05)
'''


@pytest.fixture
def project(tmp_path: Path, database_url: str) -> Path:
    with connect_raw(database_url) as conn:
        fill(conn, rows=ROWS)
    (tmp_path / "bf_proc.py").write_text(DEFS)
    return tmp_path


def _start(project: Path, database_url: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "UMBAU_DATABASE_URL": database_url, "PYTHONPATH": str(project)}
    return subprocess.Popen(
        [sys.executable, "-m", "umbau", "backfill", "run", "bf_proc:slow", "--quiet", *args],
        cwd=project, env=env, start_new_session=True, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)


def _changed(url: str) -> int:
    return int(scalar(url, "SELECT count(*) FROM items WHERE n = 1"))  # type: ignore[arg-type]


def _wait_for_rows(url: str, proc: subprocess.Popen[str], rows: int = 1000) -> None:
    deadline = time.monotonic() + 60
    while _changed(url) < rows:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the backfill did not start"
        time.sleep(0.1)


def _sessions(url: str) -> int:
    """Other client sessions on the test database (the workers' ones; not autovacuum)."""
    return int(scalar(url, "SELECT count(*) FROM pg_stat_activity "  # type: ignore[arg-type]
                      "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                      "AND backend_type = 'client backend'"))


def _no_sessions_within(url: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _sessions(url) and time.monotonic() < deadline:
        time.sleep(0.1)
    return _sessions(url) == 0


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_to_the_parent_stops_the_workers(project: Path, database_url: str,
                                                signum: int, code: int) -> None:
    proc = _start(project, database_url, "--workers", "3")
    _wait_for_rows(database_url, proc)
    started = time.monotonic()
    os.kill(proc.pid, signum)  # the parent alone, as `kill` and systemd send it
    _out, err = proc.communicate(timeout=30)
    assert time.monotonic() - started < 10
    assert proc.returncode == code, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert "rolled back" not in err
    assert len(err.strip().splitlines()) == 1, err
    match = re.search(r"([\d,]+) of 20,000 rows done; rerun to resume", err)
    assert match, err
    done = int(match.group(1).replace(",", ""))
    assert 0 < done < ROWS and done == _changed(database_url)  # the batches committed
    assert _no_sessions_within(database_url, 5)  # no worker goes on
    time.sleep(0.5)
    assert _changed(database_url) == done
    rerun = _start(project, database_url, "--workers", "2")
    _out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    assert scalar(database_url, "SELECT count(*) FROM items WHERE n <> 1") == 0


def test_ctrl_c_on_the_process_group_prints_one_line(project: Path, database_url: str) -> None:
    """A terminal's Ctrl-C reaches the parent and every worker at once."""
    proc = _start(project, database_url, "--workers", "3")
    _wait_for_rows(database_url, proc)
    os.killpg(proc.pid, signal.SIGINT)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert len(err.strip().splitlines()) == 1 and "rerun to resume" in err


def test_workers_stop_when_the_parent_is_killed(project: Path, database_url: str) -> None:
    proc = _start(project, database_url, "--workers", "3")
    _wait_for_rows(database_url, proc)
    os.kill(proc.pid, signal.SIGKILL)  # the parent alone; the workers are orphaned
    proc.wait()
    # they finish their current batch and stop: their sessions end within seconds
    assert _no_sessions_within(database_url, 5)
    done = _changed(database_url)
    time.sleep(1)
    assert _changed(database_url) == done < ROWS


def test_restart_is_refused_while_another_process_runs_it(
        project: Path, database_url: str, settings: Settings, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    proc = _start(project, database_url)
    _wait_for_rows(database_url, proc, rows=500)
    monkeypatch.chdir(project)
    monkeypatch.syspath_prepend(str(project))
    code = main(["--database-url", database_url, "backfill", "run", "bf_proc:slow",
                 "--restart"])
    err = capsys.readouterr().err
    assert code == EXIT_BACKFILL_IN_USE, err
    assert re.search(r"backfill slow is running: worker \S+:\d+:\w+ \(server pid \d+\) owns "
                     r"chunk 0", err), err
    assert len(err.strip().splitlines()) == 1
    assert proc.poll() is None  # the running backfill was left alone
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    # exactly once: the refused restart deleted nothing under the running worker
    assert scalar(database_url, "SELECT count(*) FROM items WHERE n <> 1") == 0
    assert backfill_status(settings, "slow")[0].status == "done"
    # once it is over, --restart forgets the state (and runs it again)
    with connect_raw(database_url) as conn:
        conn.execute("UPDATE items SET n = 0")
    assert main(["--database-url", database_url, "backfill", "run", "bf_proc:slow",
                 "--restart", "--quiet"]) == 0
    assert scalar(database_url, "SELECT count(*) FROM items WHERE n <> 1") == 0


def test_restart_after_kill_9_is_allowed(project: Path, database_url: str,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A killed worker's session is gone: it can never commit again, so its unexpired
    lease does not block --restart."""
    proc = _start(project, database_url)
    _wait_for_rows(database_url, proc, rows=500)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert _no_sessions_within(database_url, 5)
    monkeypatch.chdir(project)
    monkeypatch.syspath_prepend(str(project))
    with connect_raw(database_url) as conn:
        conn.execute("UPDATE items SET n = 0")
    assert main(["--database-url", database_url, "backfill", "run", "bf_proc:slow",
                 "--restart", "--quiet"]) == 0
    assert scalar(database_url, "SELECT count(*) FROM items WHERE n <> 1") == 0


@pytest.mark.parametrize("workers", ["1", "2"])
def test_state_that_vanishes_under_a_run_is_one_line(project: Path, database_url: str,
                                                     workers: str) -> None:
    proc = _start(project, database_url, "--workers", workers)
    _wait_for_rows(database_url, proc, rows=500)
    with connect_raw(database_url) as conn:
        conn.execute("DELETE FROM umbau_backfills WHERE name = 'slow'")
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == EXIT_BACKFILL_STATE_LOST, err
    assert "AssertionError" not in err and "Traceback" not in err
    assert "state vanished" in err and len(err.strip().splitlines()) == 1, err
