"""Revisions that leave their transaction: recorded as partial, never retried blindly;
a failed concurrent index build is cleaned up and retried."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from helpers import add_revision, linear_project, settings_for
from sqlalchemy import text

from umbau.cli import main
from umbau.commands import doctor, migrate, status
from umbau.errors import MigrationFailed, PartiallyApplied
from umbau.events import Event
from umbau.postgres.connect import connect

pytestmark = pytest.mark.db


def _rows(url: str) -> list[tuple[str, str, int, str | None]]:
    with connect(url) as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT revision, outcome, attempts, error FROM umbau_history ORDER BY id"))]


def _tables(url: str) -> set[str]:
    with connect(url) as conn:
        return set(conn.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars())


def test_commit_half_way_then_failure_is_partial(tmp_path: Path, database_url: str) -> None:
    project = linear_project(tmp_path, 1)
    add_revision(project, "r2", "r1", upgrade='''
        op.create_table("half", sa.Column("id", sa.Integer, primary_key=True))
        op.get_bind().commit()
        op.execute("SELECT 1/0")
    ''')
    settings = settings_for(project, database_url)
    with pytest.raises(PartiallyApplied) as info:
        migrate.upgrade(settings, allow_unsafe=True)
    message = str(info.value)
    assert info.value.exit_code == 16
    assert "rolled back" not in message
    assert "left its transaction" in message and "CREATE TABLE half" in message
    assert "umbau stamp r2" in message and "r2.py:" in message
    assert "half" in _tables(database_url)  # what it committed stays, as reported
    rows = _rows(database_url)
    assert rows[-1][:3] == ("r2", "partial", 1)
    state = status.status(settings)
    assert state.current == ("r1",) and state.last_run is not None
    assert state.last_run.outcome == "partial"
    found = doctor.doctor(settings)
    assert any(f.code == "partial-run" and "r2" in f.message for f in found.findings)


def test_partial_step_is_not_retried_on_lock_timeout(tmp_path: Path, database_url: str) -> None:
    project = linear_project(tmp_path, 1)
    add_revision(project, "r2", "r1", upgrade='''
        op.create_table("half", sa.Column("id", sa.Integer, primary_key=True))
        op.get_bind().commit()
        op.add_column("t1", sa.Column("x", sa.Integer))
    ''')
    settings = settings_for(project, database_url, lock_timeout="100ms", retries=5,
                            backoff_base="10ms", backoff_max="20ms")
    with connect(database_url) as blocker:
        migrate.upgrade(settings, "r1", allow_unsafe=True)
        blocker.execute(text("LOCK TABLE t1 IN ACCESS SHARE MODE"))
        with pytest.raises(PartiallyApplied, match="lock timeout"):
            migrate.upgrade(settings, allow_unsafe=True)
        blocker.rollback()
    assert _rows(database_url)[-1][:3] == ("r2", "partial", 1)


def test_autocommit_block_work_then_failure_is_partial(tmp_path: Path,
                                                      database_url: str) -> None:
    project = linear_project(tmp_path, 1)
    add_revision(project, "r2", "r1", upgrade='''
        with op.get_context().autocommit_block():
            op.execute("CREATE INDEX CONCURRENTLY ix_t1_v ON t1 (v)")
        op.execute("SELECT 1/0")
    ''')
    settings = settings_for(project, database_url)
    with pytest.raises(PartiallyApplied, match="CREATE INDEX CONCURRENTLY ix_t1_v"):
        migrate.upgrade(settings, allow_unsafe=True)


def test_sql_commit_is_noticed(tmp_path: Path, database_url: str) -> None:
    project = linear_project(tmp_path, 1)
    add_revision(project, "r2", "r1", upgrade='''
        op.execute("CREATE TABLE half (id int)")
        op.execute("COMMIT")
        op.execute("SELECT 1/0")
    ''')
    with pytest.raises(PartiallyApplied):
        migrate.upgrade(settings_for(project, database_url), allow_unsafe=True)


def test_step_that_stays_in_its_transaction_is_rolled_back(tmp_path: Path,
                                                           database_url: str) -> None:
    project = linear_project(tmp_path, 1)
    add_revision(project, "r2", "r1", upgrade='''
        op.create_table("half", sa.Column("id", sa.Integer, primary_key=True))
        op.execute("SELECT 1/0")
    ''')
    with pytest.raises(MigrationFailed, match="rolled back") as info:
        migrate.upgrade(settings_for(project, database_url), allow_unsafe=True)
    assert not isinstance(info.value, PartiallyApplied)
    assert "half" not in _tables(database_url)
    assert _rows(database_url)[-1][1] == "failed"


def _invalid(url: str) -> list[str]:
    with connect(url) as conn:
        return list(conn.execute(text(
            "SELECT indexrelid::regclass::text FROM pg_index WHERE NOT indisvalid")).scalars())


def test_failed_concurrent_index_is_dropped_and_retried(tmp_path: Path,
                                                       database_url: str) -> None:
    """CREATE INDEX CONCURRENTLY waits for older transactions; a lock timeout there
    leaves an invalid index that made every retry fail with "already exists"."""
    project = linear_project(tmp_path, 1)
    add_revision(project, "r2", "r1", upgrade='''
        with op.get_context().autocommit_block():
            op.execute("CREATE INDEX CONCURRENTLY ix_t1_v ON t1 (v)")
    ''')
    settings = settings_for(project, database_url, lock_timeout="300ms", retries=20,
                            backoff_base="100ms", backoff_max="200ms")
    migrate.upgrade(settings, "r1", allow_unsafe=True)
    events: list[Event] = []
    blocker = connect(database_url)
    conn = blocker.__enter__()
    # a writer in a transaction: CIC builds its (invalid) index, then waits for it
    conn.execute(text("INSERT INTO t1 (v) VALUES ('x')"))
    released = threading.Timer(1.5, conn.rollback)
    released.start()
    try:
        result = migrate.upgrade(settings, on_event=events.append, allow_unsafe=True)
    finally:
        released.join()
        blocker.__exit__(None, None, None)
    assert result.after == ("r2",) and result.retries >= 1
    assert any(e.kind == "invalid_index_dropped" for e in events)
    assert _invalid(database_url) == []
    assert _rows(database_url)[-1][:2] == ("r2", "success")


def test_failed_unique_concurrent_index_leaves_nothing(tmp_path: Path,
                                                      database_url: str) -> None:
    project = linear_project(tmp_path, 1)
    add_revision(project, "r2", "r1", upgrade='''
        with op.get_context().autocommit_block():
            op.execute("CREATE UNIQUE INDEX CONCURRENTLY ux_t1_v ON t1 (v)")
    ''')
    settings = settings_for(project, database_url)
    migrate.upgrade(settings, "r1", allow_unsafe=True)
    with connect(database_url) as conn:
        conn.execute(text("INSERT INTO t1 (v) VALUES ('a'), ('a')"))
        conn.commit()
    with pytest.raises(MigrationFailed, match="rolled back") as info:
        migrate.upgrade(settings, allow_unsafe=True)
    assert "Key (v)=(a) is duplicated" in str(info.value)
    assert _invalid(database_url) == []


def test_cli_exit_code_for_partial(tmp_path: Path, database_url: str,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    project = linear_project(tmp_path, 1)
    add_revision(project, "r2", "r1", upgrade='''
        op.execute("CREATE TABLE half (id int)")
        op.get_bind().commit()
        op.execute("SELECT 1/0")
    ''')
    args = ["--config", str(project / "umbau.toml"), "--database-url", database_url]
    assert main([*args, "upgrade", "--allow-unsafe"]) == 16
    capsys.readouterr()
    assert main([*args, "history", "--runs"]) == 0
    assert "partial" in capsys.readouterr().out
    assert main([*args, "status"]) in (0, 3)
    out = capsys.readouterr().out
    assert "partial" in out and "r2" in out


def test_a_partial_revision_is_not_rerun_blindly(tmp_path: Path, database_url: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    project = linear_project(tmp_path, 1)
    path = add_revision(project, "r2", "r1", upgrade='''
        op.execute("CREATE TABLE half (id int)")
        op.execute("INSERT INTO t1 (v) VALUES ('moved once')")
        op.get_bind().commit()
        op.execute("SELECT 1/0")
    ''')
    settings = settings_for(project, database_url)
    with pytest.raises(PartiallyApplied):
        migrate.upgrade(settings, allow_unsafe=True)
    with pytest.raises(PartiallyApplied, match=r"was partially applied on .*--retry-partial"):
        migrate.upgrade(settings, allow_unsafe=True)  # refused before anything runs
    with connect(database_url) as conn:
        assert conn.execute(text("SELECT count(*) FROM t1")).scalar() == 1  # not twice
        conn.execute(text("DROP TABLE half"))  # undone by hand
        conn.execute(text("DELETE FROM t1"))
        conn.commit()
    path.write_text(path.read_text().replace('op.execute("SELECT 1/0")', "pass"))
    args = ["--config", str(project / "umbau.toml"), "--database-url", database_url]
    assert main([*args, "upgrade", "--allow-unsafe"]) == 16
    assert "--retry-partial" in capsys.readouterr().err
    assert main([*args, "upgrade", "--allow-unsafe", "--retry-partial"]) == 0
    assert _rows(database_url)[-1][:2] == ("r2", "success")
    with connect(database_url) as conn:
        assert conn.execute(text("SELECT count(*) FROM t1")).scalar() == 1


def test_finished_by_hand_and_stamped_goes_on(tmp_path: Path, database_url: str) -> None:
    project = linear_project(tmp_path, 1)
    add_revision(project, "r2", "r1", upgrade='''
        op.execute("CREATE TABLE half (id int)")
        op.get_bind().commit()
        op.execute("SELECT 1/0")
    ''')
    add_revision(project, "r3", "r2", upgrade='op.execute("CREATE TABLE after_r3 (id int)")')
    settings = settings_for(project, database_url)
    with pytest.raises(PartiallyApplied):
        migrate.upgrade(settings, allow_unsafe=True)
    migrate.stamp(settings, "r2")  # the rest of r2 done by hand
    assert migrate.upgrade(settings, allow_unsafe=True).after == ("r3",)
