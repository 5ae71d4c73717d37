"""Revisions that need a connection are captured where the user says (issue 10, point 6):
``--server``, else the configured database's server, else an embedded PostgreSQL; with
``--setup`` run there first. Hazards inside them are flagged."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import add_revision, make_project, settings_for
from sqlalchemy import text

from umbau.cli import main
from umbau.commands.lint import lint
from umbau.postgres.connect import connect
from umbau.postgres.scratch import create_database, drop_database

# fails unless it runs on the server that holds the marker database, and unless the
# setup hook created table `seeded`; then does something hazardous on an existing table
NEEDS_SERVER = '''
bind = op.get_bind()
marker = bind.execute(sa.text("SELECT count(*) FROM pg_database WHERE datname = '{marker}'"))
if not marker.scalar():
    raise RuntimeError("captured on another server")
bind.execute(sa.text("SELECT count(*) FROM seeded")).scalar()
op.create_index("ix_docs_title", "docs", ["title"])'''


@pytest.fixture
def marker(server_url: str) -> Iterator[str]:
    name = f"umbau_marker_{uuid.uuid4().hex[:8]}"
    create_database(server_url, name)
    yield name
    drop_database(server_url, name)


def project(folder: Path, marker: str) -> Path:
    make_project(folder)
    add_revision(folder, "r1", None,
                 upgrade='op.create_table("docs", sa.Column("id", sa.BigInteger, '
                         'primary_key=True), sa.Column("title", sa.Text))',
                 downgrade='op.drop_table("docs")')
    add_revision(folder, "r2", "r1", upgrade=NEEDS_SERVER.format(marker=marker),
                 downgrade='op.drop_index("ix_docs_title", table_name="docs")')
    (folder / "lint_setup.py").write_text(
        "import sqlalchemy as sa\n\n\ndef seed(conn):\n"
        "    conn.execute(sa.text('CREATE TABLE seeded (id int)'))\n")
    return folder


def test_captured_on_the_configured_server_with_setup(
        tmp_path: Path, database_url: str, marker: str) -> None:
    settings = settings_for(project(tmp_path, marker), database_url)
    without = lint(settings, ["r2"])
    assert [f.rule for f in without.findings] == ["unrendered-revision"]
    assert "seeded" in without.findings[0].message  # the marker check passed: right server
    result = lint(settings, ["r2"], setup="lint_setup:seed")
    assert [u.via for u in result.units] == ["database"]
    assert [f.rule for f in result.findings] == ["require-concurrent-index-creation"]


def test_server_option_names_the_server(tmp_path: Path, server_url: str, marker: str,
                                        monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(project(tmp_path, marker))
    # offline: no configured database, so only --server says where to capture
    assert main(["lint", "r2", "--server", server_url, "--setup", "lint_setup:seed",
                 "--format", "json"]) == 1
    out = capsys.readouterr().out
    assert '"rule": "require-concurrent-index-creation"' in out
    with connect(server_url) as conn:  # its throwaway databases are gone
        left = conn.execute(text("SELECT count(*) FROM pg_database "
                                 "WHERE datname LIKE 'umbau_lint_%'")).scalar_one()
    assert left == 0


def test_without_a_server_the_embedded_one_is_used_and_the_hint_says_what_works(
        tmp_path: Path, marker: str) -> None:
    settings = settings_for(project(tmp_path, marker), None)
    result = lint(settings, ["r2"], setup="lint_setup:seed")
    assert [f.rule for f in result.findings] == ["unrendered-revision"]
    message = result.findings[0].message
    assert "captured on another server" in message
    assert "umbau lint --server URL" in message and "--setup" in message


@pytest.mark.parametrize(("volatility", "flagged"), [("IMMUTABLE", False), ("VOLATILE", True)])
def test_volatility_is_read_from_the_live_server(tmp_path: Path, database_url: str,
                                                 volatility: str, flagged: bool) -> None:
    with connect(database_url) as conn:
        conn.execute(text("CREATE TABLE docs (id int)"))
        conn.execute(text(f"CREATE FUNCTION app_token() RETURNS text LANGUAGE sql {volatility} "
                          "AS 'SELECT ''x''::text'"))
        conn.commit()
    sql = tmp_path / "add.sql"
    sql.write_text("ALTER TABLE docs ADD COLUMN token text DEFAULT app_token();\n")
    make_project(tmp_path)
    rules = [f.rule for f in lint(settings_for(tmp_path, database_url), [str(sql)]).findings]
    assert ("add-column-volatile-default" in rules) is flagged
    offline = lint(settings_for(tmp_path, database_url), [str(sql)], offline=True)
    assert "calls app_token(), which is not built in" in offline.findings[0].message
