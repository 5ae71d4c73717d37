"""Several migrators at once, lock timeouts with retries, and kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import add_revision, linear_project, settings_for
from sqlalchemy import text

from umbau.commands import migrate, status
from umbau.errors import RetriesExhausted
from umbau.events import Event
from umbau.postgres.connect import connect

pytestmark = pytest.mark.db


def umbau(project: Path, url: str, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UMBAU_")}
    env["UMBAU_DATABASE_URL"] = url
    return subprocess.Popen([sys.executable, "-m", "umbau", *args], cwd=project, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_eight_migrators_at_once(tmp_path: Path, database_url: str) -> None:
    project = linear_project(tmp_path, 4)
    add_revision(project, "r5", "r4", upgrade='op.execute("SELECT pg_sleep(0.5)")',
                 downgrade='op.execute("SELECT 1")')
    procs = [umbau(project, database_url, "upgrade") for _ in range(8)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, outputs
    with connect(database_url) as conn:
        rows = conn.execute(text(
            "SELECT revision, count(*) FROM umbau_history WHERE outcome = 'success' "
            "GROUP BY revision ORDER BY revision")).all()
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "r5"
    assert [tuple(r) for r in rows] == [(f"r{i}", 1) for i in range(1, 6)]
    assert sum("nothing to do" in out for out, _ in outputs) == 7
    assert any("waiting for the migrator lock" in err for _, err in outputs)


def _blocked_project(tmp_path: Path, url: str) -> Path:
    project = linear_project(tmp_path, 1)
    add_revision(project, "r2", "r1", upgrade='op.add_column("t1", sa.Column("w", sa.Text))',
                 downgrade='op.drop_column("t1", "w")')
    migrate.upgrade(settings_for(project, url), "r1")
    return project


def test_lock_timeout_is_retried_until_the_lock_is_released(tmp_path: Path,
                                                           database_url: str) -> None:
    project = _blocked_project(tmp_path, database_url)
    events: list[Event] = []
    blocker = connect(database_url)
    conn = blocker.__enter__()
    conn.execute(text("LOCK TABLE t1 IN ACCESS EXCLUSIVE MODE"))

    def release() -> None:
        time.sleep(1.5)
        conn.rollback()

    thread = threading.Thread(target=release)
    thread.start()
    try:
        settings = settings_for(project, database_url, lock_timeout="200ms", retries=20,
                                backoff_base="100ms", backoff_max="300ms")
        result = migrate.upgrade(settings, on_event=events.append)
    finally:
        thread.join()
        blocker.__exit__(None, None, None)
    assert result.after == ("r2",)
    assert result.retries >= 1
    retries = [e for e in events if e.kind == "retry"]
    assert retries and "lock timeout" in (retries[0].error or "")
    with connect(database_url) as conn2:
        attempts = conn2.execute(text(
            "SELECT attempts FROM umbau_history WHERE revision = 'r2'")).scalar()
    assert attempts == result.retries + 1


def test_lock_never_released_fails_cleanly(tmp_path: Path, database_url: str) -> None:
    project = _blocked_project(tmp_path, database_url)
    with connect(database_url) as conn:
        conn.execute(text("LOCK TABLE t1 IN ACCESS EXCLUSIVE MODE"))
        settings = settings_for(project, database_url, lock_timeout="100ms", retries=2,
                                backoff_base="50ms", backoff_max="100ms")
        with pytest.raises(RetriesExhausted, match="after 3 attempts \\(2 retries\\)") as info:
            migrate.upgrade(settings)
        assert info.value.exit_code == 7
        conn.rollback()
    assert status.status(settings_for(project, database_url)).current == ("r1",)
    with connect(database_url) as conn:
        row = conn.execute(text("SELECT outcome, attempts, error FROM umbau_history "
                                "WHERE revision = 'r2'")).one()
    assert row[0] == "failed" and row[1] == 3 and "lock timeout" in row[2]


def test_kill_9_during_a_long_revision_then_rerun(tmp_path: Path, database_url: str) -> None:
    project = linear_project(tmp_path, 1)
    marker = tmp_path / "slow"
    marker.touch()
    add_revision(project, "r2", "r1", upgrade=f'''
        op.create_table("half", sa.Column("id", sa.Integer, primary_key=True))
        import os
        if os.path.exists({str(marker)!r}):
            op.execute("SELECT pg_sleep(60)")
        ''', downgrade='op.drop_table("half")')
    proc = umbau(project, database_url, "upgrade")
    deadline = time.monotonic() + 30
    with connect(database_url, autocommit=True) as watcher:
        while time.monotonic() < deadline:
            busy = watcher.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(60)%'"
                " AND state = 'active'")).scalar()
            if busy:
                break
            time.sleep(0.1)
        assert busy, "the long revision never started"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert watcher.execute(text("SELECT version_num FROM alembic_version")).scalar() == "r1"
        marker.unlink()
        started = time.monotonic()
        rerun = umbau(project, database_url, "upgrade")
        _, err = rerun.communicate(timeout=60)
        assert rerun.returncode == 0, err
        # the server noticed the dead client and released the migrator lock quickly
        assert time.monotonic() - started < 20
        assert watcher.execute(text("SELECT version_num FROM alembic_version")).scalar() == "r2"
        assert watcher.execute(text("SELECT to_regclass('half')")).scalar() == "half"
        assert watcher.execute(text(
            "SELECT count(*) FROM umbau_history WHERE revision = 'r2' AND outcome = 'success'"
        )).scalar() == 1
