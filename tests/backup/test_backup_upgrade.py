"""Backups around upgrades: taken by themselves before risky revisions, restored by
--rollback restore when a failed run left committed revisions behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import add_revision, make_project, settings_for
from sqlalchemy import text

from umbau.backup.guard import decide
from umbau.cli import main
from umbau.commands._common import open_project
from umbau.commands.migrate import upgrade
from umbau.errors import MigrationFailed
from umbau.postgres import history
from umbau.postgres.connect import connect


def _project(folder: Path) -> Path:
    make_project(folder)
    add_revision(folder, "r1", None,
                 upgrade='op.create_table("people", sa.Column("id", sa.Integer, '
                         'primary_key=True), sa.Column("email", sa.Text), '
                         'sa.Column("age", sa.Integer))\n'
                         'op.execute("INSERT INTO people SELECT g, \'p\' || g || \'@x.de\', g '
                         'FROM generate_series(1, 50) g")',
                 downgrade='op.drop_table("people")')
    add_revision(folder, "r2", "r1", upgrade='op.create_index("people_age", "people", ["age"])',
                 downgrade='op.drop_index("people_age")')
    add_revision(folder, "r3", "r2",
                 upgrade='op.drop_column("people", "email")\n'
                         'op.create_table("audit", sa.Column("id", sa.Integer, '
                         'primary_key=True))',
                 downgrade='op.add_column("people", sa.Column("email", sa.Text))\n'
                           'op.drop_table("audit")')
    add_revision(folder, "r4", "r3", upgrade='op.execute("SELECT 1 / 0")',
                 downgrade="pass")
    return folder


def _backups(project: Path) -> list[Path]:
    folder = project / "backups"
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def test_destructive_policy_backs_up_only_before_drops(tmp_path: Path,
                                                       database_url: str) -> None:
    project = _project(tmp_path / "p")
    settings = settings_for(project, database_url)
    upgrade(settings, "r2", allow_unsafe=True)  # r2: a plain create_index
    assert _backups(project) == []  # create table, create index: nothing to lose
    decision = decide(settings, open_project(settings), "r3", "destructive")
    assert decision.backup and "drop column people.email" in decision.risky
    upgrade(settings, "r3", allow_unsafe=True)
    [manifest_file] = _backups(project)
    manifest = json.loads(manifest_file.read_text())
    assert manifest["revision"] == ["r2"] and "before upgrade to r3" in manifest["reason"]
    assert manifest["tables"]["public.people"]["rows"] == 50


def test_never_and_always(tmp_path: Path, database_url: str) -> None:
    project = _project(tmp_path / "p")
    settings = settings_for(project, database_url)
    upgrade(settings, "r1", backup="always", allow_unsafe=True)
    assert len(_backups(project)) == 1
    upgrade(settings, "r3", backup="never", allow_unsafe=True)
    assert len(_backups(project)) == 1
    upgrade(settings, "r3", backup="always", allow_unsafe=True)  # nothing pending: no backup
    assert len(_backups(project)) == 1


def test_rollback_restore_after_committed_revisions(tmp_path: Path, database_url: str,
                                                    capsys) -> None:
    project = _project(tmp_path / "p")
    settings = settings_for(project, database_url)
    upgrade(settings, "r2", allow_unsafe=True)  # r2: a plain create_index
    code = main(["--config", str(project / "umbau.toml"), "--database-url", database_url,
                 "upgrade", "--rollback", "restore", "--allow-unsafe"])
    assert code == 7
    err = capsys.readouterr().err
    assert "revision r4 failed: restoring" in err and "restored the backup" in err
    with connect(database_url) as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "r2"
        assert conn.execute(text("SELECT count(email) FROM people")).scalar() == 50
        assert conn.execute(text("SELECT to_regclass('audit')")).scalar() is None
        rows = history.read(conn, "umbau_history")
    outcomes = [(r.direction, r.revision, r.outcome) for r in rows]
    assert ("restore", "r2", "ok") in outcomes
    assert ("upgrade", "r4", "failed") in outcomes  # the failure is kept


def test_no_restore_when_the_failing_revision_was_rolled_back(tmp_path: Path,
                                                              database_url: str) -> None:
    project = _project(tmp_path / "p")
    settings = settings_for(project, database_url)
    upgrade(settings, "r3", allow_unsafe=True)
    with pytest.raises(MigrationFailed) as caught:
        upgrade(settings, "head", rollback="restore", allow_unsafe=True)
    assert "restored" not in str(caught.value)
    with connect(database_url) as conn:
        rows = history.read(conn, "umbau_history")
    assert all(r.direction != "restore" for r in rows)
