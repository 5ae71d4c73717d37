"""Table names in copy and backup: SQL identifier syntax, with "did you mean" on case."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from backup_support import fill, table_checksums

from umbau.backup.copy import copy
from umbau.backup.dump import DumpOptions, backup
from umbau.errors import UsageError
from umbau.settings import Settings

APP_SCHEMA = """
CREATE SCHEMA app;
CREATE TABLE app.t (id int PRIMARY KEY, v text);
CREATE TABLE app."Orders" (id int PRIMARY KEY, t_id int REFERENCES app.t);
CREATE TABLE "Mixed" (id int PRIMARY KEY);
INSERT INTO app.t SELECT g, 'v' || g FROM generate_series(1, 25) g;
INSERT INTO app."Orders" SELECT g, 1 + g % 25 FROM generate_series(1, 40) g;
INSERT INTO "Mixed" SELECT generate_series(1, 3);
"""


@pytest.fixture
def app_settings(settings: Settings) -> Settings:
    fill(settings.require_database_url(), APP_SCHEMA)
    return settings


def test_copy_table_outside_public(app_settings: Settings,
                                   make_database: Callable[[], str]) -> None:
    target = make_database()
    result = copy(app_settings, app_settings.require_database_url(), target, tables=["app.t"])
    assert [t.table for t in result.tables] == ["app.t"]
    assert table_checksums(target) == {
        "app.t": table_checksums(app_settings.require_database_url())["app.t"]}


def test_copy_quoted_names_in_identifier_syntax(app_settings: Settings,
                                                make_database: Callable[[], str]) -> None:
    target = make_database()
    result = copy(app_settings, app_settings.require_database_url(), target,
                  tables=['app."Orders"', "APP.T", '"Mixed"'])
    assert sorted(t.table for t in result.tables) == ["app.Orders", "app.t", "public.Mixed"]
    assert sorted(table_checksums(target)) == ["app.Orders", "app.t", "public.Mixed"]


@pytest.mark.parametrize(("name", "hint"), [
    ("app.orders", "did you mean 'app.\"Orders\"'?"),
    ("mixed", "did you mean '\"Mixed\"'?"),
])
def test_copy_says_did_you_mean_when_only_the_case_differs(
        app_settings: Settings, make_database: Callable[[], str], name: str,
        hint: str) -> None:
    target = make_database()
    with pytest.raises(UsageError) as caught:
        copy(app_settings, app_settings.require_database_url(), target, tables=[name])
    assert hint in str(caught.value) and "\n" not in str(caught.value)
    assert table_checksums(target) == {}


@pytest.mark.parametrize("name", ["a.b.c.d", 'app."t', "app.", ""])
def test_copy_refuses_bad_syntax(app_settings: Settings, make_database: Callable[[], str],
                                 name: str) -> None:
    target = make_database()
    with pytest.raises(UsageError, match=r"SQL name|parts"):
        copy(app_settings, app_settings.require_database_url(), target, tables=[name])
    assert table_checksums(target) == {}


def test_backup_table_in_identifier_syntax(app_settings: Settings) -> None:
    result = backup(app_settings, DumpOptions(tables=('app."Orders"', "app.t")))
    assert sorted(result.manifest["tables"]) == ["app.Orders", "app.t"]
    assert result.manifest["tables"]["app.Orders"]["rows"] == 40


def test_backup_missing_table_says_did_you_mean(app_settings: Settings) -> None:
    folder = app_settings.root / "backups"
    with pytest.raises(UsageError, match=re.escape("did you mean 'app.\"Orders\"'")):
        backup(app_settings, DumpOptions(tables=("app.orders",)))
    assert not folder.exists() or not list(folder.iterdir())
