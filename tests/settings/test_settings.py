from __future__ import annotations

from pathlib import Path

import pytest

from umbau.commands.config import show_config
from umbau.errors import SettingsError
from umbau.settings import format_duration, load_settings, mask_url, parse_duration


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_any_file(tmp_path: Path) -> None:
    s = load_settings(cwd=tmp_path, environ={})
    assert s.lock_timeout == 2.0
    assert s.statement_timeout is None
    assert s.retries == 10
    assert s.lock_wait == 900.0
    assert s.backoff_base == 0.5 and s.backoff_max == 30.0
    assert s.settings_file is None
    with pytest.raises(SettingsError, match="no umbau settings found"):
        s.require_alembic()
    with pytest.raises(SettingsError, match="no database URL"):
        s.require_database_url()


def test_found_by_walking_up_from_pyproject(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", '[tool.umbau]\nscript_location = "mig"\nretries = 3\n'
          'lock_timeout = "500ms"\n[tool.umbau.lint]\nfoo = 1\n')
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    s = load_settings(cwd=deep, environ={})
    assert s.settings_file == tmp_path / "pyproject.toml"
    assert s.script_location == tmp_path / "mig"
    assert s.retries == 3
    assert s.lock_timeout == 0.5
    assert s.section("lint") == {"foo": 1}
    assert s.sources["retries"].startswith("file ")


def test_umbau_toml_wins_over_pyproject_in_same_folder(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", "[tool.umbau]\nretries = 3\n")
    write(tmp_path / "umbau.toml", "[tool.umbau]\nretries = 4\n")
    assert load_settings(cwd=tmp_path, environ={}).retries == 4


def test_precedence_flags_env_database_url_file(tmp_path: Path) -> None:
    write(tmp_path / "umbau.toml", '[tool.umbau]\ndatabase_url = "postgresql://file/db"\n'
          'lock_wait = "1min"\n')
    s = load_settings(cwd=tmp_path, environ={})
    assert s.database_url == "postgresql://file/db"
    s = load_settings(cwd=tmp_path, environ={"DATABASE_URL": "postgresql://plain/db"})
    assert s.database_url == "postgresql://plain/db"
    assert s.sources["database_url"] == "env DATABASE_URL"
    env = {"DATABASE_URL": "postgresql://plain/db", "UMBAU_DATABASE_URL": "postgresql://umbau/db",
           "UMBAU_LOCK_WAIT": "2min"}
    s = load_settings(cwd=tmp_path, environ=env)
    assert s.database_url == "postgresql://umbau/db"
    assert s.lock_wait == 120
    s = load_settings(cwd=tmp_path, environ=env, flags={"database_url": "postgresql://flag/db",
                                                         "lock_wait": "3min"})
    assert s.database_url == "postgresql://flag/db"
    assert s.lock_wait == 180
    assert s.sources["lock_wait"] == "flag --lock-wait"


def test_database_url_from_alembic_ini_as_last_resort(tmp_path: Path) -> None:
    write(tmp_path / "alembic.ini", "[alembic]\nscript_location = mig\n"
          "sqlalchemy.url = postgresql://ini@host/db\n")
    s = load_settings(cwd=tmp_path, environ={})
    assert s.alembic_config == tmp_path / "alembic.ini"
    assert s.database_url == "postgresql://ini@host/db"


@pytest.mark.parametrize(("text", "message"), [
    ("[tool.umbau]\nlock_timout = '2s'\n", "did you mean 'lock_timeout'"),
    ("[tool.umbau]\nlock_timeout = 'soon'\n", "is not a duration"),
    ("[tool.umbau]\nretries = 'many'\n", "is not a whole number"),
    ("[tool.umbau]\nretries = -1\n", "negative"),
    ("[tool.umbau\n", "fix the TOML syntax"),
])
def test_bad_settings_are_one_line_errors(tmp_path: Path, text: str, message: str) -> None:
    write(tmp_path / "umbau.toml", text)
    with pytest.raises(SettingsError, match=message) as info:
        load_settings(cwd=tmp_path, environ={})
    assert "\n" not in str(info.value)


def test_durations() -> None:
    assert parse_duration("2s", key="k") == 2
    assert parse_duration("500ms", key="k") == 0.5
    assert parse_duration("15min", key="k") == 900
    assert parse_duration("1h", key="k") == 3600
    assert parse_duration(3, key="k") == 3
    assert parse_duration("off", key="k", allow_off=True) is None
    with pytest.raises(SettingsError):
        parse_duration("off", key="k")
    assert format_duration(0.5) == "500ms"
    assert format_duration(900) == "15min"
    assert format_duration(None) == "off"


def test_config_masks_password(tmp_path: Path) -> None:
    assert mask_url("postgresql://u:secret@h:5432/db") == "postgresql://u:***@h:5432/db"
    s = load_settings(cwd=tmp_path, environ={"UMBAU_DATABASE_URL": "postgresql://u:secret@h/db"})
    result = show_config(s)
    rendered = str(result.as_dict())
    assert "secret" not in rendered
    assert "***" in rendered


@pytest.mark.parametrize("url", ["postgresql://u@h/db", "postgres://u@h/db",
                                 "postgresql+asyncpg://u@h/db",
                                 "postgresql+psycopg_async://u@h/db"])
def test_urls_use_psycopg_for_umbaus_own_connections(url: str) -> None:
    from umbau.postgres.connect import normalize_url

    assert normalize_url(url).drivername == "postgresql+psycopg"


def test_non_postgres_url_is_refused() -> None:
    from umbau.postgres.connect import normalize_url

    with pytest.raises(SettingsError, match="PostgreSQL only"):
        normalize_url("mysql://u@h/db")
