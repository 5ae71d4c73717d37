"""Every bad input: a one-line error that says what to do, its exit code, nothing changed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from helpers import add_revision, linear_project, make_project, settings_for
from sqlalchemy import text

from umbau.cli import main
from umbau.commands import migrate, status
from umbau.errors import (
    AuthenticationFailed,
    BrokenRevisionGraph,
    DatabaseUnreachable,
    EnvironmentNotShared,
    LockWaitExceeded,
    RevisionFileError,
    SettingsError,
)
from umbau.postgres.connect import connect
from umbau.postgres.locks import LOCK_CLASS, MIGRATE_LOCK

pytestmark = pytest.mark.db


def public_tables(url: str) -> set[str]:
    with connect(url) as conn:
        return set(conn.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars())


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    """Progress lines may come first; the error itself is exactly one line."""
    lines = [line for line in err.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("umbau: error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], err
    return errors[0]


def test_no_settings_found(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(["status"], capsys)
    assert code == 2
    assert "run `umbau init`" in one_line_error(err)


def test_server_unreachable_names_host_not_password(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    project = linear_project(tmp_path, 1)
    url = "postgresql://app:s3cret@127.0.0.1:1/appdb"
    with pytest.raises(DatabaseUnreachable):
        migrate.upgrade(settings_for(project, url))
    code, out, err = run_cli(["--config", str(project / "umbau.toml"), "--database-url", url,
                              "upgrade"], capsys)
    assert code == 5
    line = one_line_error(err)
    assert "127.0.0.1:1" in line and "s3cret" not in line + out


def test_wrong_password(tmp_path: Path, embedded_server: Any, server_url: str,
                        capsys: pytest.CaptureFixture[str]) -> None:
    if embedded_server is None:
        pytest.skip("needs the embedded server to switch on password authentication")
    hba = Path(embedded_server.folder) / "pg_hba.conf"
    original = hba.read_text()
    with connect(server_url, autocommit=True) as conn:
        conn.execute(text("DROP ROLE IF EXISTS umbau_pw"))
        conn.execute(text("CREATE ROLE umbau_pw LOGIN PASSWORD 'right'"))
        hba.write_text("local all umbau_pw scram-sha-256\n" + original)
        conn.execute(text("SELECT pg_reload_conf()"))
    try:
        project = linear_project(tmp_path, 1)
        url = server_url.replace("postgres@", "umbau_pw:wrong@", 1)
        with pytest.raises(AuthenticationFailed, match="umbau_pw"):
            migrate.upgrade(settings_for(project, url))
        code, _, err = run_cli(["--config", str(project / "umbau.toml"), "--database-url", url,
                                "status"], capsys)
        assert code == 5
        line = one_line_error(err)
        assert "password authentication failed" in line and "wrong" not in line
    finally:
        hba.write_text(original)
        with connect(server_url, autocommit=True) as conn:
            conn.execute(text("SELECT pg_reload_conf()"))


def test_syntax_error_in_revision_names_file_and_line(tmp_path: Path, database_url: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    project = linear_project(tmp_path, 1)
    bad = add_revision(project, "r2", "r1")
    bad.write_text(bad.read_text().replace("def upgrade():", "def upgrade(:"))
    with pytest.raises(RevisionFileError) as info:
        migrate.upgrade(settings_for(project, database_url))
    assert info.value.path.endswith("r2.py") and info.value.line
    code, _, err = run_cli(["--config", str(project / "umbau.toml"), "--database-url",
                            database_url, "upgrade"], capsys)
    assert code == 8
    assert "r2.py:" in one_line_error(err)
    assert public_tables(database_url) == set()


def test_import_error_in_revision(tmp_path: Path, database_url: str) -> None:
    project = linear_project(tmp_path, 1)
    bad = add_revision(project, "r2", "r1")
    bad.write_text("import no_such_module_umbau\n" + bad.read_text())
    with pytest.raises(RevisionFileError, match=r"r2\.py:1"):
        migrate.upgrade(settings_for(project, database_url))


def test_cycle_in_revision_graph(tmp_path: Path, database_url: str) -> None:
    project = make_project(tmp_path)
    add_revision(project, "a", "b")
    add_revision(project, "b", "a")
    with pytest.raises(BrokenRevisionGraph, match="cycle") as info:
        status.status(settings_for(project, database_url))
    assert info.value.exit_code == 8


def test_missing_down_revision(tmp_path: Path, database_url: str) -> None:
    project = linear_project(tmp_path, 1)
    add_revision(project, "r3", "r2_missing")
    with pytest.raises(BrokenRevisionGraph, match="r2_missing"):
        migrate.upgrade(settings_for(project, database_url))
    assert public_tables(database_url) == set()


def test_lock_wait_exceeded_names_the_holder(tmp_path: Path, database_url: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    project = linear_project(tmp_path, 1)
    with connect(database_url, autocommit=True) as holder:
        holder.execute(text("SELECT pg_advisory_lock(:c, :o)"),
                       {"c": LOCK_CLASS, "o": MIGRATE_LOCK})
        pid = holder.execute(text("SELECT pg_backend_pid()")).scalar()
        with pytest.raises(LockWaitExceeded, match=f"pid {pid}") as info:
            migrate.upgrade(settings_for(project, database_url, lock_wait="1s"))
        assert info.value.exit_code == 6
        code, _, err = run_cli(["--config", str(project / "umbau.toml"), "--database-url",
                                database_url, "--lock-wait", "1s", "upgrade"], capsys)
        assert code == 6
        assert f"pid {pid}" in one_line_error(err)
    assert public_tables(database_url) == set()


def test_env_py_that_ignores_the_connection(tmp_path: Path, database_url: str) -> None:
    project = linear_project(tmp_path, 1)
    env = project / "migrations" / "env.py"
    env.write_text(env.read_text().replace(
        'connectable = config.attributes.get("connection", None)', "connectable = None").replace(
        'engine_from_config(\n        {"sqlalchemy.url": _url()}, prefix="sqlalchemy.",',
        '__import__("sqlalchemy").create_engine(_url(),'))  # its own engine, not shareable
    with pytest.raises(EnvironmentNotShared, match=r"config\.attributes") as info:
        migrate.upgrade(settings_for(project, database_url))
    assert info.value.exit_code == 12
    assert public_tables(database_url) == set()


def test_existing_project_gets_the_lines_to_add(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    alembic = shutil.which("alembic", path=str(Path(__file__).parents[2] / ".venv" / "bin"))
    assert alembic
    subprocess.run([alembic, "init", "migrations"], cwd=tmp_path, check=True,
                   capture_output=True)
    env = tmp_path / "migrations" / "env.py"  # an engine of its own: the stock one is shared
    env.write_text(env.read_text().replace("engine_from_config(\n        config.get_section(",
                                           "engine_from_config(\n        dict("))
    code, out, _ = run_cli(["init", str(tmp_path)], capsys)
    assert code == 0
    assert 'config.attributes.get("connection", None)' in out
    assert (tmp_path / "umbau.toml").exists()


def test_bad_setting_value_from_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = linear_project(tmp_path, 1)
    code, _, err = run_cli(["--config", str(project / "umbau.toml"), "--lock-timeout", "soon",
                            "status"], capsys)
    assert code == 2
    assert "lock_timeout" in one_line_error(err)


def test_settings_error_type() -> None:
    assert SettingsError("x").exit_code == 2


def test_sql_of_a_revision_that_reads_data(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    project = linear_project(tmp_path, 1)
    add_revision(project, "r2", "r1", upgrade='''
        n = op.get_bind().execute(sa.text("SELECT count(*) FROM t1")).scalar()
        op.execute(f"COMMENT ON TABLE t1 IS '{n} rows'")
        ''', downgrade='op.execute("COMMENT ON TABLE t1 IS NULL")')
    code, _, err = run_cli(["--config", str(project / "umbau.toml"), "upgrade", "--sql"],
                             capsys)
    assert code == 8
    assert "scratch database instead of --sql" in one_line_error(err)
