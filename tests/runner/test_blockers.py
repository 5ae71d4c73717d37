"""Lock-timeout retries name the blocking sessions; --cancel-blockers is opt-in."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from helpers import add_revision, linear_project, settings_for
from sqlalchemy import text

from umbau.cli import main
from umbau.commands import migrate
from umbau.errors import RetriesExhausted
from umbau.events import Event
from umbau.postgres.connect import connect

pytestmark = pytest.mark.db


def _project(tmp_path: Path) -> Path:
    project = linear_project(tmp_path, 1)
    add_revision(project, "r2", "r1", upgrade='op.add_column("t1", sa.Column("x", sa.Integer))')
    return project


def _hold_lock(url: str) -> tuple[object, object]:
    blocker = connect(url)
    conn = blocker.__enter__()
    conn.execute(text("SET application_name = 'blocker-app'"))
    conn.execute(text("LOCK TABLE t1 IN ACCESS SHARE MODE"))
    return blocker, conn


def test_retries_name_the_blocker_in_events_and_history(tmp_path: Path,
                                                       database_url: str) -> None:
    project = _project(tmp_path)
    settings = settings_for(project, database_url, lock_timeout="400ms", retries=20,
                            backoff_base="50ms", backoff_max="100ms")
    migrate.upgrade(settings, "r1")
    blocker, conn = _hold_lock(database_url)
    release = threading.Timer(1.5, conn.rollback)  # type: ignore[attr-defined]
    release.start()
    events: list[Event] = []
    try:
        migrate.upgrade(settings, on_event=events.append)
    finally:
        release.join()
        blocker.__exit__(None, None, None)  # type: ignore[attr-defined]
    retries = [e for e in events if e.kind == "retry"]
    assert retries and all("blocker-app" in (e.holder or "") for e in retries)
    assert "idle in transaction" in (retries[0].holder or "")
    assert "LOCK TABLE t1" in (retries[0].holder or "")
    with connect(database_url) as check:
        row = check.execute(text("SELECT outcome, error FROM umbau_history "
                                 "WHERE revision = 'r2'")).one()
    assert row[0] == "success" and "blocker-app" in row[1] and "lock timeout" in row[1]


def test_exhausted_retries_name_the_blocker(tmp_path: Path, database_url: str) -> None:
    project = _project(tmp_path)
    settings = settings_for(project, database_url, lock_timeout="300ms", retries=1,
                            backoff_base="10ms", backoff_max="20ms")
    migrate.upgrade(settings, "r1")
    blocker, _conn = _hold_lock(database_url)
    try:
        with pytest.raises(RetriesExhausted, match=r"blocked by pid .*blocker-app"):
            migrate.upgrade(settings)
    finally:
        blocker.__exit__(None, None, None)  # type: ignore[attr-defined]


def test_blockers_are_never_cancelled_by_default(tmp_path: Path, database_url: str) -> None:
    project = _project(tmp_path)
    settings = settings_for(project, database_url, lock_timeout="300ms", retries=2,
                            backoff_base="10ms", backoff_max="20ms")
    migrate.upgrade(settings, "r1")
    blocker, conn = _hold_lock(database_url)
    try:
        with pytest.raises(RetriesExhausted):
            migrate.upgrade(settings)
        assert conn.execute(text("SELECT 1")).scalar() == 1  # type: ignore[attr-defined]
    finally:
        blocker.__exit__(None, None, None)  # type: ignore[attr-defined]


def test_cancel_blockers_after_n_retries(tmp_path: Path, database_url: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """A blocker running a long statement: pg_cancel_backend ends it, the upgrade goes on."""
    project = _project(tmp_path)
    args = ["--config", str(project / "umbau.toml"), "--database-url", database_url,
            "--lock-timeout", "400ms", "--retries", "5"]
    assert main([*args, "upgrade", "r1"]) == 0
    blocker = connect(database_url)
    conn = blocker.__enter__()
    errors: list[BaseException] = []

    def busy() -> None:
        try:
            conn.execute(text("SET application_name = 'blocker-app'"))
            conn.execute(text("LOCK TABLE t1 IN ACCESS SHARE MODE"))
            conn.execute(text("SELECT pg_sleep(30)"))
        except Exception as exc:  # the cancel ends it
            errors.append(exc)

    thread = threading.Thread(target=busy)
    thread.start()
    try:
        code = main([*args, "upgrade", "--cancel-blockers", "1"])
    finally:
        thread.join(timeout=40)
        blocker.__exit__(None, None, None)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "cancelled the statements of the sessions blocking r2" in captured.err
    assert errors and "canceling statement due to user request" in str(errors[0])


def test_warns_before_upgrade_about_an_old_lock_holder(tmp_path: Path,
                                                      database_url: str) -> None:
    project = _project(tmp_path)
    settings = settings_for(project, database_url, lock_timeout="100ms", retries=1,
                            backoff_base="10ms", backoff_max="20ms")
    migrate.upgrade(settings, "r1")
    blocker, conn = _hold_lock(database_url)
    events: list[Event] = []
    try:
        conn.execute(text("SELECT pg_sleep(0.5)"))  # type: ignore[attr-defined]
        with pytest.raises(RetriesExhausted):
            migrate.upgrade(settings, on_event=events.append)
    finally:
        blocker.__exit__(None, None, None)  # type: ignore[attr-defined]
    warnings = [e for e in events if e.kind == "old_lock_holders"]
    assert len(warnings) == 1 and "blocker-app" in (warnings[0].message or "")
    assert "retry budget" in (warnings[0].message or "")
    assert events.index(warnings[0]) < min(i for i, e in enumerate(events)
                                           if e.kind == "step_start")


def test_no_warning_for_young_transactions(tmp_path: Path, database_url: str) -> None:
    project = _project(tmp_path)
    settings = settings_for(project, database_url)
    migrate.upgrade(settings, "r1")
    with connect(database_url) as other:
        other.execute(text("SELECT count(*) FROM t1"))
        events: list[Event] = []
        thread = threading.Timer(0.3, other.rollback)
        thread.start()
        migrate.upgrade(settings, on_event=events.append)
        thread.join()
    assert not [e for e in events if e.kind == "old_lock_holders"]
