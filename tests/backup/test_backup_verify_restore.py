"""verify (checksum, full read, restore-test) and restore (refusals, history, revision)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from backup_support import table_checksums
from helpers import linear_project, settings_for
from sqlalchemy import text

from umbau.backup.binaries import find_tool
from umbau.backup.dump import backup
from umbau.backup.restore import restore
from umbau.backup.verify import verify
from umbau.cli import main
from umbau.errors import (
    BackupCorrupt,
    PgToolMissing,
    PgToolTooOld,
    TargetNotEmpty,
    UnknownDatabaseRevision,
)
from umbau.postgres import dumpcatalog as catalog
from umbau.postgres import history
from umbau.postgres.connect import connect
from umbau.settings import Settings


def test_restore_test_matches_and_is_recorded(settings: Settings) -> None:
    result = backup(settings)
    checked = verify(settings, result.path, restore_test=True)
    assert checked.ok, checked.as_dict()
    test = checked.restore_test
    assert test is not None and test.revision_ok is True and test.duration_s > 0
    assert test.tables["public.orders"] == {"expected": 1200, "actual": 1200, "exact": True,
                                            "ok": True}
    manifest = json.loads(result.manifest_file.read_text())
    assert manifest["verification"]["ok"] is True
    assert manifest["verification"]["restore_test"]["duration_s"] > 0
    with connect(settings.database_url) as conn:  # the scratch database is gone
        left = conn.execute(text("SELECT count(*) FROM pg_database "
                                 "WHERE datname LIKE 'umbau_verify_%'")).scalar()
    assert left == 0


def test_verify_catches_a_truncated_file(settings: Settings) -> None:
    result = backup(settings)
    data = result.path.read_bytes()
    result.path.write_bytes(data[: len(data) * 2 // 3])
    checked = verify(settings, result.path)
    assert not checked.ok and checked.checksum_ok is False and not checked.archive_ok
    assert json.loads(result.manifest_file.read_text())["verification"]["ok"] is False
    assert main(["--database-url", settings.database_url, "backup", "verify",
                 str(result.path)]) == 14


def test_verify_without_manifest_still_reads_to_the_end(settings: Settings,
                                                        tmp_path: Path) -> None:
    result = backup(settings)
    lone = tmp_path / "lone.dump"
    data = result.path.read_bytes()
    lone.write_bytes(data[: len(data) - 200])
    checked = verify(settings, lone)
    assert checked.checksum_ok is None and not checked.archive_ok and not checked.ok


def test_restore_refuses_a_database_with_tables(settings: Settings) -> None:
    result = backup(settings)
    before = table_checksums(settings.database_url)
    with pytest.raises(TargetNotEmpty, match="--clean --yes"):
        restore(settings, result.path)
    with pytest.raises(TargetNotEmpty, match="confirm with --yes"):
        restore(settings, result.path, clean=True)
    assert table_checksums(settings.database_url) == before
    assert main(["--database-url", settings.database_url, "restore", str(result.path)]) == 10


def test_clean_restore_replaces_and_records_history(settings: Settings) -> None:
    result = backup(settings)
    with connect(settings.database_url) as conn:
        conn.execute(text("DELETE FROM orders WHERE id > 100"))
        conn.commit()
    restored = restore(settings, result.path, clean=True, yes=True)
    assert restored.revision == ("r2",)
    with connect(settings.database_url) as conn:
        assert conn.execute(text("SELECT count(*) FROM orders")).scalar() == 1200
        rows = history.read(conn, "umbau_history")
    assert rows[0].direction == "restore" and rows[0].revision == "r2"
    assert rows[0].message == f"restore {result.path.name}"
    assert json.loads(result.manifest_file.read_text())["restores"][0]["duration_s"] >= 0


def test_restore_refuses_a_corrupt_backup_before_touching_anything(
        settings: Settings, make_database) -> None:
    result = backup(settings)
    result.path.write_bytes(result.path.read_bytes()[:500])
    target = make_database()
    with pytest.raises(BackupCorrupt, match="sha256"):
        restore(settings, result.path, database_url=target)
    assert table_checksums(target) == {}


def test_restore_of_a_revision_the_scripts_do_not_know(settings: Settings, tmp_path: Path,
                                                       make_database) -> None:
    result = backup(settings)  # revision r2
    project = linear_project(tmp_path / "proj", count=1)  # knows only r1
    target = make_database()
    with_project = settings_for(project, target)
    with pytest.raises(UnknownDatabaseRevision, match=r"r2.*--ignore-revision"):
        restore(with_project, result.path)
    assert table_checksums(target) == {}
    assert restore(with_project, result.path, ignore_revision=True).revision == ("r2",)


def test_client_tools_older_than_the_server_are_refused(settings: Settings,
                                                        tmp_path: Path) -> None:
    old = shutil.which("pg_dump")
    if old is None or find_tool("pg_dump", None, pg_bin=Path(old).parent).major >= 16:
        pytest.skip("needs an older pg_dump on PATH than the embedded server")
    with pytest.raises(PgToolTooOld, match=r"older than the server \(PostgreSQL 16\)"):
        find_tool("pg_dump", 16, pg_bin=Path(old).parent)
    with pytest.raises(PgToolMissing, match="UMBAU_PG_BIN"):
        find_tool("pg_dump", 16, pg_bin=tmp_path)
    # Without a folder named, the newest (the embedded server's own) is found.
    assert find_tool("pg_dump", 16, path_env=str(Path(old).parent)).major >= 16


def test_cli_refuses_old_client_and_leaves_nothing(settings: Settings, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    old = shutil.which("pg_dump")
    with connect(settings.database_url) as conn:
        server = catalog.server_major(conn)
    if old is None or find_tool("pg_dump", None, pg_bin=Path(old).parent).major >= server:
        pytest.skip("needs a pg_dump on PATH older than the test server")
    monkeypatch.setenv("UMBAU_PG_BIN", str(Path(old).parent))
    out = tmp_path / "out"
    code = main(["--database-url", settings.database_url, "backup", "--dir", str(out), "-q"])
    assert code == 13
    assert "older than the server" in capsys.readouterr().err
    assert not out.exists() or list(out.iterdir()) == []


def test_restore_test_of_a_backup_without_the_version_table(settings: Settings) -> None:
    from umbau.backup.dump import DumpOptions

    result = backup(settings, DumpOptions(exclude_tables=("alembic_version",)))
    checked = verify(settings, result.path, restore_test=True)
    assert checked.ok, checked.as_dict()
    assert checked.restore_test is not None and checked.restore_test.revision_ok is None


def test_restore_jobs_only_for_directory_backups(settings: Settings, make_database) -> None:
    from umbau.errors import UsageError

    result = backup(settings)
    target = make_database()
    with pytest.raises(UsageError, match="leave --jobs out"):
        restore(settings, result.path, database_url=target, jobs=4)
    assert table_checksums(target) == {}


def test_a_read_only_manifest_does_not_fail_a_finished_restore(
        settings: Settings, make_database, capsys: pytest.CaptureFixture[str]) -> None:
    result = backup(settings)
    target = make_database()
    # A folder where the manifest's temporary file goes: the manifest cannot be
    # rewritten (as a read-only mount would, and unlike chmod also when run as root).
    result.manifest_file.with_name(result.manifest_file.name + ".partial").mkdir()
    code = main(["--database-url", settings.database_url, "restore", str(result.path),
                 "--database", target])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "revision r2" in captured.out and "could not be updated" in captured.err
