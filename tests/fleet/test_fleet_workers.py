"""Several worker processes on one run, kill -9, SIGTERM, and two operators at once: real
`umbau` processes and real signals."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from fleet_support import (
    CONFIG,
    HEAD,
    RELEASE_1_0,
    REVISIONS_1_1,
    Fleet,
    control_rows,
    revision,
    spawn,
    targets_toml,
    upgrades,
)
from sqlalchemy import text

from umbau.cli import main
from umbau.errors import EXIT_FLEET_STOPPED, EXIT_LOCK_WAIT
from umbau.fleet import state
from umbau.postgres.connect import connect

pytestmark = [pytest.mark.db, pytest.mark.slow]


def each_revision_once(url: str) -> None:
    """umbau_history proves it: every revision succeeded once, nothing ran twice."""
    succeeded = [r for r, outcome in upgrades(url) if outcome == "success"]
    assert len(succeeded) == len(set(succeeded)) == 1 + REVISIONS_1_1, succeeded


def wait_for(control_url: str, run_id: str, done: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            rows = control_rows(control_url, run_id)
        except Exception:  # the tables do not exist yet
            rows = {}
        if sum(s == "done" for s, _ in rows.values()) >= done:
            return
        time.sleep(0.1)
    raise AssertionError(f"fewer than {done} targets done after {timeout}s")


def test_two_worker_processes_upgrade_each_target_exactly_once(
        make_fleet: Fleet, database_url: str, tmp_path: Path) -> None:
    fleet = make_fleet(10)
    targets = str(targets_toml(tmp_path / "fleet.toml", fleet))
    args = ("fleet", "upgrade", "--run", "shared", "--worker", "--targets", targets,
            "--control-url", database_url, "-q")
    workers = [spawn(*args), spawn(*args)]
    outputs = [w.communicate(timeout=300) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    rows = control_rows(database_url, "shared")
    assert rows == dict.fromkeys(fleet, ("done", 1))  # claimed once each
    for url in fleet.values():
        assert revision(url) == HEAD
        each_revision_once(url)


def test_kill_9_of_a_worker_mid_run_then_a_rerun_completes(
        make_fleet: Fleet, database_url: str, tmp_path: Path) -> None:
    fleet = make_fleet(6)
    names = sorted(fleet)
    targets = str(targets_toml(tmp_path / "fleet.toml", fleet))
    # the third target's `ADD COLUMN orders.shop_id` waits for this lock (and retries):
    # the worker is killed while that target runs
    with connect(fleet[names[2]]) as blocker:
        blocker.execute(text("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE"))
        worker = spawn("fleet", "upgrade", "--run", "r1", "--worker", "--targets", targets,
                       "--control-url", database_url, "-q")
        wait_for(database_url, "r1", 2)
        wait_until_running(database_url, "r1", names[2])
        worker.send_signal(signal.SIGKILL)
        worker.communicate(timeout=30)
        blocker.rollback()
    assert control_rows(database_url, "r1")[names[2]] == ("running", 1)  # its owner is gone
    assert main(["--config", str(CONFIG), "fleet", "upgrade", "--run", "r1", "--targets",
                 targets, "--control-url", database_url, "-q"]) == 0
    after = control_rows(database_url, "r1")
    assert {s for s, _ in after.values()} == {"done"}
    assert after[names[2]] == ("done", 2)  # taken over at once: the dead worker's session ended
    for url in fleet.values():
        assert revision(url) == HEAD
        each_revision_once(url)


def wait_until_running(control_url: str, run_id: str, name: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while control_rows(control_url, run_id)[name][0] != "running":
        assert time.monotonic() < deadline, f"{name} never ran"
        time.sleep(0.1)
    time.sleep(1)  # well inside its upgrade: waiting for the lock


def test_sigterm_stops_new_starts_and_a_rerun_resumes(
        make_fleet: Fleet, database_url: str, tmp_path: Path) -> None:
    fleet = make_fleet(8)
    targets = str(targets_toml(tmp_path / "fleet.toml", fleet))
    worker = spawn("fleet", "upgrade", "--run", "r2", "--targets", targets, "--control-url",
                   database_url)
    wait_for(database_url, "r2", 1)
    worker.send_signal(signal.SIGTERM)
    _, err = worker.communicate(timeout=120)
    assert worker.returncode == EXIT_FLEET_STOPPED, err
    assert "resume with `umbau fleet upgrade --run r2`" in err
    rows = control_rows(database_url, "r2")
    states = [s for s, _ in rows.values()]
    assert "running" not in states and "pending" in states  # leases given back
    for name, url in fleet.items():  # each target is at 1.0.0 or at the head, not between
        assert revision(url) == (HEAD if rows[name][0] == "done" else RELEASE_1_0)
    assert main(["--config", str(CONFIG), "fleet", "upgrade", "--run", "r2", "--targets",
                 targets, "--control-url", database_url, "-q"]) == 0
    for url in fleet.values():
        each_revision_once(url)


def test_two_operators_at_once(make_fleet: Fleet, database_url: str, tmp_path: Path) -> None:
    fleet = make_fleet(6)
    targets = str(targets_toml(tmp_path / "fleet.toml", fleet))
    args = ("fleet", "upgrade", "--targets", targets, "--control-url", database_url, "-q")
    operators = [spawn(*args), spawn(*args)]
    outputs = [p.communicate(timeout=300) for p in operators]
    codes = sorted(p.returncode for p in operators)
    # the second either found the first run in progress, or started after it ended
    assert codes in ([0, 0], [0, EXIT_LOCK_WAIT]), outputs
    if codes[1] == EXIT_LOCK_WAIT:
        assert any("is in progress: join it with `umbau fleet upgrade --run" in err
                   for _, err in outputs)
    for url in fleet.values():
        assert revision(url) == HEAD
        each_revision_once(url)


def test_a_run_in_progress_refuses_a_second_run(make_fleet: Fleet, database_url: str,
                                                tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    fleet = make_fleet(2)
    targets = str(targets_toml(tmp_path / "fleet.toml", fleet))
    with state.control(database_url) as conn:  # a live worker of run "busy"
        state.ensure_tables(conn)
        with state.creating(conn):
            from umbau.fleet.targets import TargetSource, resolve

            run = state.create_run(conn, "busy", state.Task("upgrade", "head"),
                                   resolve(TargetSource(file=Path(targets))), [], None, "test")
            state.join(conn, run)
        code = main(["--config", str(CONFIG), "fleet", "upgrade", "--targets", targets,
                     "--control-url", database_url])
    assert code == EXIT_LOCK_WAIT
    assert "fleet run busy is in progress: join it with `umbau fleet upgrade --run busy " \
           "--worker`" in capsys.readouterr().err
    assert [revision(u) for u in fleet.values()] == [RELEASE_1_0] * 2
