"""Environment problems are not defects: extensions the embedded server lacks are found
before the run starts, and the configured server is used when it has them."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import add_revision, linear_project, settings_for
from sqlalchemy import text

from umbau.cli import main
from umbau.errors import MissingExtensions
from umbau.postgres.connect import connect
from umbau.testing import extensions
from umbau.testing.throwaway import test_on_throwaway

# The PostgreSQL 15 service of the test machine: it ships the contrib extensions.
CONTRIB_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def citext_history(folder: Path) -> Path:
    project = linear_project(folder, 1)
    add_revision(project, "r2", "r1", upgrade='''
        op.execute("CREATE EXTENSION IF NOT EXISTS citext")
        op.add_column("t1", sa.Column("email", sa.Text))
        op.execute("ALTER TABLE t1 ALTER COLUMN email TYPE citext")
    ''', downgrade='op.drop_column("t1", "email")\nop.execute("DROP EXTENSION citext")')
    return project


def contrib_server() -> str:
    try:
        with connect(CONTRIB_SERVER) as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        pytest.skip(f"the PostgreSQL service on 127.0.0.1:5432 is not running: {exc}")
    return CONTRIB_SERVER


def test_the_extensions_a_history_creates_are_found(tmp_path: Path) -> None:
    project = citext_history(tmp_path)
    add_revision(project, "r3", "r2", upgrade='op.execute(\'CREATE EXTENSION "pg_trgm"\')',
                 downgrade='op.execute("DROP EXTENSION pg_trgm")')
    from umbau import alembic_bridge as bridge

    assert extensions.required(bridge.Project(settings_for(project, None))) == \
        ["citext", "pg_trgm"]


def test_a_server_without_the_extension_stops_with_exit_22(
        tmp_path: Path, server_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    project = citext_history(tmp_path)
    if "citext" in extensions.available(server_url):
        pytest.skip("the test server ships citext")
    code = main(["--script-location", str(project / "migrations"), "test", "--server",
                 server_url, "--no-lint"])
    err = capsys.readouterr().err
    assert code == 22, err
    assert "needs extension(s) citext" in err and "--server URL" in err
    assert len(err.strip().splitlines()) == 1
    with connect(server_url) as conn:  # nothing was left behind on the server
        left = conn.execute(text("SELECT count(*) FROM pg_database "
                                 "WHERE datname LIKE 'umbau_test_%'")).scalar()
    assert left == 0


def test_the_embedded_server_lacks_it_and_nothing_is_configured(tmp_path: Path) -> None:
    project = citext_history(tmp_path)
    with pytest.raises(MissingExtensions) as raised:
        test_on_throwaway(settings_for(project, None))
    assert raised.value.extensions == ("citext",)
    assert raised.value.exit_code == 22


def test_the_configured_server_is_used_when_it_has_them(tmp_path: Path) -> None:
    server = contrib_server()
    project = citext_history(tmp_path)
    configured = server.rsplit("/", 1)[0] + "/some_app_database"  # need not exist
    report = test_on_throwaway(settings_for(project, configured))
    assert report.ok, [f.describe() for f in report.failures]
    assert "127.0.0.1:5432" in report.database
    with connect(server) as conn:  # a throwaway database there, dropped afterwards
        left = conn.execute(text("SELECT count(*) FROM pg_database "
                                 "WHERE datname LIKE 'umbau_test_%'")).scalar()
    assert left == 0
