"""Settings in one door: the backup binaries are resolved by load_settings, so a library
call of umbau.upgrade() with the CLI's environment takes the same pg_dump as the CLI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import linear_project, settings_for

from umbau.backup.config import backup_config
from umbau.cli import main
from umbau.commands import migrate, status
from umbau.errors import PgToolMissing
from umbau.settings import load_settings


def test_environment_names_the_binaries_for_library_and_cli(tmp_path: Path) -> None:
    (tmp_path / "umbau.toml").write_text('[backup]\npg_bin = "/from/the/file"\n')
    environ = {"UMBAU_PG_BIN": "/opt/pg/bin", "PATH": "/usr/local/bin:/usr/bin"}
    config = backup_config(load_settings(cwd=tmp_path, environ=environ))
    assert (config.pg_bin, config.search_path) == ("/opt/pg/bin", "/usr/local/bin:/usr/bin")
    only_file = backup_config(load_settings(cwd=tmp_path, environ={"PATH": "/usr/bin"}))
    assert (only_file.pg_bin, only_file.search_path) == ("/from/the/file", "/usr/bin")
    assert backup_config(load_settings(cwd=tmp_path, environ={})).search_path is None


@pytest.mark.db
def test_library_upgrade_takes_the_cli_binaries(tmp_path: Path, database_url: str,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    project = linear_project(tmp_path, 2)
    with (project / "umbau.toml").open("a") as toml:
        toml.write('\n[tool.umbau.backup]\nbefore_upgrade = "always"\n')
    empty = tmp_path / "no-binaries"
    empty.mkdir()
    monkeypatch.setenv("UMBAU_PG_BIN", str(empty))
    code = main(["--config", str(project / "umbau.toml"), "--database-url", database_url,
                 "upgrade"])
    assert code == PgToolMissing.exit_code and "pg_dump" in capsys.readouterr().err
    settings = load_settings(cwd=project, environ=os.environ,
                             flags={"database_url": database_url})
    with pytest.raises(PgToolMissing, match="pg_dump"):
        migrate.upgrade(settings)
    assert status.status(settings_for(project, database_url)).current == ()
