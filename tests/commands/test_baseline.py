"""A database with tables but no version table: status says so, baseline adopts it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import linear_project, settings_for
from sqlalchemy import text

from umbau.cli import main
from umbau.commands import baseline, migrate, status
from umbau.errors import ConfirmationRequired, NoMatchingRevision, UsageError
from umbau.postgres.connect import connect

pytestmark = pytest.mark.db


def _unversioned(url: str, settings: object) -> None:
    """The schema of r2 made by the revisions, then its version and history forgotten."""
    with connect(url) as conn:
        conn.execute(text("DROP TABLE alembic_version"))
        conn.execute(text("DROP TABLE umbau_history"))
        conn.commit()


def _version(url: str) -> list[str]:
    with connect(url) as conn:
        found = conn.execute(text("SELECT to_regclass('alembic_version') IS NOT NULL")).scalar()
        if not found:
            return []
        return list(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())


def test_status_names_an_unversioned_database(tmp_path: Path, database_url: str) -> None:
    project = linear_project(tmp_path, 3)
    settings = settings_for(project, database_url)
    migrate.upgrade(settings, "r2")
    _unversioned(database_url, settings)
    result = status.status(settings)
    assert result.state == "unversioned" and result.exit_code == 4
    assert "no version table" in result.summary() and "umbau baseline" in result.summary()
    assert set(result.unversioned) == {"t1", "t2"}


def test_baseline_finds_and_stamps_the_matching_revision(tmp_path: Path,
                                                         database_url: str) -> None:
    project = linear_project(tmp_path, 3)
    settings = settings_for(project, database_url)
    migrate.upgrade(settings, "r2")
    _unversioned(database_url, settings)
    with pytest.raises(ConfirmationRequired, match="revision r2: rerun with --yes"):
        baseline.baseline(settings)
    assert _version(database_url) == []  # nothing stamped without confirmation
    result = baseline.baseline(settings, yes=True)
    assert result.revision == "r2" and result.matched
    assert [c.revision for c in result.compared] == ["r1", "r2", "r3"]
    assert _version(database_url) == ["r2"]
    assert migrate.upgrade(settings).after == ("r3",)  # and upgrade goes on from there


def test_no_revision_matches(tmp_path: Path, database_url: str,
                             capsys: pytest.CaptureFixture[str]) -> None:
    project = linear_project(tmp_path, 2)
    settings = settings_for(project, database_url)
    migrate.upgrade(settings, "r1")
    _unversioned(database_url, settings)
    with connect(database_url) as conn:
        conn.execute(text("ALTER TABLE t1 ADD COLUMN extra int"))
        conn.commit()
    with pytest.raises(NoMatchingRevision, match="closest is r1 with 1 difference") as info:
        baseline.baseline(settings, yes=True)
    assert info.value.exit_code == 17 and "column t1.extra" in str(info.value)
    assert _version(database_url) == []
    code = main(["--config", str(project / "umbau.toml"), "--database-url", database_url,
                 "baseline", "--yes", "--format", "json"])
    assert code == 17
    assert json.loads(capsys.readouterr().out)["error"]["type"] == "NoMatchingRevision"


def test_named_revision_and_refusals(tmp_path: Path, database_url: str,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    project = linear_project(tmp_path, 2)
    settings = settings_for(project, database_url)
    with pytest.raises(UsageError, match="no tables"):
        baseline.baseline(settings, yes=True)
    migrate.upgrade(settings, "r1")
    with pytest.raises(UsageError, match="already at r1"):
        baseline.baseline(settings, yes=True)
    _unversioned(database_url, settings)
    args = ["--config", str(project / "umbau.toml"), "--database-url", database_url]
    assert main([*args, "baseline", "--revision", "r1", "--yes"]) == 0
    assert "stamped r1 (as named)" in capsys.readouterr().out
    assert _version(database_url) == ["r1"]


def test_upgrade_on_an_unversioned_database_points_to_baseline(tmp_path: Path,
                                                               database_url: str) -> None:
    project = linear_project(tmp_path, 2)
    settings = settings_for(project, database_url)
    migrate.upgrade(settings, "r1")
    _unversioned(database_url, settings)
    with pytest.raises(Exception, match="umbau baseline"):
        migrate.upgrade(settings)
