"""`umbau lint` on real Alembic projects: offline rendering, the throwaway database, the
configured database (pending revisions, sizes), the CLI and the upgrade gate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import add_revision, make_project, settings_for
from sqlalchemy import text

from umbau.cli import main
from umbau.commands.lint import lint
from umbau.commands.migrate import upgrade
from umbau.errors import EXIT_UNSAFE, UnsafeMigration
from umbau.postgres.connect import connect

CREATE = 'op.create_table("docs", sa.Column("id", sa.BigInteger, primary_key=True), ' \
         'sa.Column("title", sa.Text), sa.Column("body", sa.String(50)))'


def project_with_index(folder: Path) -> Path:
    """r1 creates docs (with an index: fine); r2 indexes it again without CONCURRENTLY."""
    make_project(folder)
    add_revision(folder, "r1", None, upgrade=CREATE + '\nop.create_index("ix_a", "docs", ["id"])',
                 downgrade='op.drop_table("docs")')
    add_revision(folder, "r2", "r1",
                 upgrade='x = 1\nop.create_index("ix_docs_title", "docs",\n'
                         '                ["title"])',
                 downgrade='op.drop_index("ix_docs_title", table_name="docs")')
    return folder


def test_offline_findings_name_the_revision_file_and_python_line(tmp_path: Path) -> None:
    project = project_with_index(tmp_path)
    result = lint(settings_for(project, None))
    assert [(f.rule, f.unit) for f in result.findings] == [
        ("require-concurrent-index-creation", "r2")]
    finding = result.findings[0]
    source = Path(finding.path or "").read_text().splitlines()
    assert finding.path and finding.path.endswith("r2.py")
    assert "op.create_index(" in source[(finding.line or 0) - 1]
    assert finding.sql == "CREATE INDEX ix_docs_title ON docs (title)"
    assert "SHARE" in finding.lock and "writes" in finding.blocks
    assert "postgresql_concurrently=True" in finding.safe
    assert result.exit_code == 1
    assert {u.via for u in result.units} == {"offline"}


def test_safe_revision_is_not_flagged(tmp_path: Path) -> None:
    make_project(tmp_path)
    add_revision(tmp_path, "r1", None, upgrade=CREATE, downgrade='op.drop_table("docs")')
    add_revision(tmp_path, "r2", "r1", upgrade='''
        with op.get_context().autocommit_block():
            op.create_index("ix_docs_title", "docs", ["title"], postgresql_concurrently=True,
                            if_not_exists=True)
        op.create_foreign_key("fk", "docs", "docs", ["id"], ["id"], postgresql_not_valid=True)
        op.alter_column("docs", "body", type_=sa.String(200))
        op.add_column("docs", sa.Column("n", sa.Integer, server_default="0", nullable=False))''',
                 downgrade='op.drop_index("ix_docs_title", table_name="docs")')
    add_revision(tmp_path, "r3", "r2",
                 upgrade='op.execute("ALTER TABLE docs VALIDATE CONSTRAINT fk")',
                 downgrade="op.drop_constraint('fk', 'docs')")
    result = lint(settings_for(tmp_path, None))
    assert result.findings == [] and result.exit_code == 0


def test_revision_ignores_and_unused_ignores(tmp_path: Path) -> None:
    project = project_with_index(tmp_path)
    path = project / "migrations" / "versions" / "r2.py"
    path.write_text(path.read_text().replace(
        "    op.create_index(",
        "    # umbau: ignore[require-concurrent-index-creation] docs has 30 rows\n"
        "    op.create_index(").replace(
        "def downgrade():", "# umbau: ignore[drop-table] nothing dropped here\ndef downgrade():"))
    result = lint(settings_for(project, None))
    assert [f.rule for f in result.findings] == ["unused-ignore"]
    assert result.exit_code == 0


READS_DATA = '''
rows = op.get_bind().execute(sa.text("SELECT id FROM docs")).fetchall()
op.add_column("docs", sa.Column("n", sa.Integer, nullable=False))
for (row_id,) in rows:
    op.execute(sa.text("UPDATE docs SET n = 1 WHERE id = :i").bindparams(i=row_id))'''


def test_revision_that_reads_data_is_linted_on_a_throwaway_database(
        tmp_path: Path, database_url: str) -> None:
    project = project_with_index(tmp_path)
    add_revision(project, "r3", "r2", upgrade=READS_DATA, downgrade='op.drop_column("docs", "n")')
    result = lint(settings_for(project, database_url), ["r3"])
    assert [u.via for u in result.units] == ["database"]
    finding = next(f for f in result.findings if f.rule == "add-column-not-null-without-default")
    assert finding.unit == "r3" and finding.line is not None
    assert "op.add_column" in Path(finding.path or "").read_text().splitlines()[finding.line - 1]
    with connect(database_url) as conn:  # the scratch database is gone again
        left = conn.execute(text("SELECT count(*) FROM pg_database "
                                 "WHERE datname LIKE 'umbau_lint_%'")).scalar_one()
    assert left == 0


def test_revision_that_cannot_be_rendered_is_reported(tmp_path: Path, database_url: str) -> None:
    make_project(tmp_path)
    add_revision(tmp_path, "r1", None,
                 upgrade='op.get_bind().execute(sa.text("SELECT * FROM nowhere")).fetchall()',
                 downgrade='op.execute("SELECT 1")')
    result = lint(settings_for(tmp_path, database_url))
    assert [f.rule for f in result.findings] == ["unrendered-revision"]
    assert "nowhere" in result.findings[0].message


def test_pending_revisions_sizes_and_the_large_table_threshold(
        tmp_path: Path, database_url: str) -> None:
    project = project_with_index(tmp_path)
    add_revision(project, "r3", "r2", upgrade='op.drop_column("docs", "body")',
                 downgrade='op.add_column("docs", sa.Column("body", sa.String(50)))')
    settings = settings_for(project, database_url)
    upgrade(settings, "r1")
    with connect(database_url) as conn:
        conn.execute(text("INSERT INTO docs (title) SELECT 't' FROM generate_series(1, 2000)"))
        conn.execute(text("ANALYZE docs"))
        conn.commit()
    result = lint(settings, since=None)  # pending: r2, r3
    assert {u.id for u in result.units} == {"r2", "r3"}
    assert result.version_from == "server"
    assert result.tables["docs"].exists and result.tables["docs"].rows == 2000
    assert [(f.rule, f.severity) for f in result.findings] == [
        ("require-concurrent-index-creation", "error"), ("drop-column", "error")]
    assert result.findings[0].table_bytes and result.findings[0].table_rows == 2000

    settings.sections["lint"] = {"severity": {"drop-column": "warning"}, "large_table": 1}
    raised = lint(settings)
    assert [(f.rule, f.severity) for f in raised.findings][1] == ("drop-column", "error")
    assert "larger than lint.large_table" in raised.findings[1].notes[0]


def test_findings_on_tables_a_pending_revision_creates_keep_their_severity(
        tmp_path: Path, database_url: str) -> None:
    project = project_with_index(tmp_path)
    result = lint(settings_for(project, database_url))
    assert [(f.rule, f.severity) for f in result.findings] == [
        ("require-concurrent-index-creation", "error")]
    assert not result.tables["docs"].exists
    assert "does not exist in the database yet" in result.findings[0].notes[0]


def test_since_and_explicit_revisions(tmp_path: Path) -> None:
    project = project_with_index(tmp_path)
    add_revision(project, "r3", "r2", upgrade='op.drop_column("docs", "body")',
                 downgrade='op.add_column("docs", sa.Column("body", sa.String(50)))')
    settings = settings_for(project, None)
    assert [f.unit for f in lint(settings, since="r2").findings] == ["r3"]
    assert [f.unit for f in lint(settings, ["r2"]).findings] == ["r2"]
    # Alembic's symbolic names: `base` is before the first revision, `heads` after the last
    assert sorted({f.unit for f in lint(settings, since="base").findings}) == ["r2", "r3"]
    assert lint(settings, since="heads").findings == []


def test_cli_formats_and_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = project_with_index(tmp_path)
    sql = tmp_path / "ok.sql"
    sql.write_text("CREATE INDEX CONCURRENTLY ix ON docs (title);\n")
    base = ["--script-location", str(project / "migrations")]
    assert main([*base, "lint", str(sql)]) == 0
    capsys.readouterr()
    assert main([*base, "lint", "--format", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["findings"][0]["rule"] == "require-concurrent-index-creation"
    assert data["findings"][0]["safe_rewrite"]
    assert main([*base, "lint", "--format", "github"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("::error title=umbau lint%3A require-concurrent-index-creation,file=")
    assert main([*base, "lint", "--disable", "require-concurrent-index-creation"]) == 0
    assert main([*base, "lint", "missing.sql"]) == 2


def test_upgrade_refuses_unsafe_revisions(tmp_path: Path, database_url: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    project = project_with_index(tmp_path)
    settings = settings_for(project, database_url)
    upgrade(settings, "r1")
    with connect(database_url) as conn:  # as many rows as the gate lets pass, and one more
        conn.execute(text("INSERT INTO docs (id, title) SELECT g, 't' "
                          "FROM generate_series(1, 10000) AS g"))
        conn.commit()
    with pytest.raises(UnsafeMigration, match="require-concurrent-index-creation") as caught:
        upgrade(settings)
    assert "on docs: at least 10,000 rows" in str(caught.value)
    base = ["--script-location", str(project / "migrations"), "--database-url", database_url]
    assert main([*base, "upgrade"]) == EXIT_UNSAFE
    err = capsys.readouterr().err
    assert "--allow-unsafe" in err
    assert "# umbau: ignore[require-concurrent-index-creation] <reason>" in " ".join(err.split())
    with connect(database_url) as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "r1"
    assert main([*base, "upgrade", "--allow-unsafe"]) == 0


def test_allow_unsafe_setting(tmp_path: Path, database_url: str) -> None:
    project = project_with_index(tmp_path)
    settings = settings_for(project, database_url)
    upgrade(settings, "r1")
    settings.sections["lint"] = {"allow_unsafe": True}
    assert [s.revision for s in upgrade(settings).steps] == ["r2"]


def test_branches_merges_and_a_data_reading_revision(tmp_path: Path, database_url: str) -> None:
    """Offline rendering fails for r3, so every revision is rendered on its own: a merge
    revision from both its parents, the data-reading one on a throwaway database."""
    project = project_with_index(tmp_path)  # r1 -> r2 (unsafe index)
    add_revision(project, "b1", "r1", upgrade='op.drop_column("docs", "body")',
                 downgrade='op.add_column("docs", sa.Column("body", sa.Text))')
    add_revision(project, "m1", ("r2", "b1"), message="merge")
    add_revision(project, "r3", "m1", upgrade=READS_DATA, downgrade='op.drop_column("docs", "n")')
    result = lint(settings_for(project, database_url), ["r2", "b1", "m1", "r3"])
    assert {u.id: u.via for u in result.units} == {
        "r2": "offline", "b1": "offline", "m1": "offline", "r3": "database"}
    assert sorted((f.unit, f.rule) for f in result.findings) == [
        ("b1", "drop-column"), ("r2", "require-concurrent-index-creation"),
        ("r3", "add-column-not-null-without-default")]


def test_cli_switches_win_over_the_settings(tmp_path: Path) -> None:
    project = project_with_index(tmp_path)
    settings = settings_for(project, None)
    settings.sections["lint"] = {"disable": ["require-concurrent-index-creation"]}
    assert lint(settings).findings == []
    again = lint(settings, enable=["require-concurrent-index-creation"])
    assert [f.rule for f in again.findings] == ["require-concurrent-index-creation"]


def test_cli_refuses_bad_files_and_versions(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    latin = tmp_path / "latin.sql"
    latin.write_bytes("SELECT 'Gr\xfc\xdfe';\n".encode("latin-1"))
    assert main(["lint", str(latin)]) == 2
    assert "save it as UTF-8" in capsys.readouterr().err
    assert main(["lint", "--target-version", "7", str(latin)]) == 2


def test_every_touched_table_is_reported_with_its_size(tmp_path: Path,
                                                       database_url: str) -> None:
    project = project_with_index(tmp_path)
    add_revision(project, "r3", "r2", upgrade=(
        'op.add_column("docs", sa.Column("lang", sa.Text(), nullable=True))\n'
        'op.create_table("tags", sa.Column("id", sa.BigInteger, primary_key=True))'),
        downgrade='op.drop_table("tags")\nop.drop_column("docs", "lang")')
    settings = settings_for(project, database_url)
    upgrade(settings, "r2", allow_unsafe=True)
    result = lint(settings)  # pending: r3, which has no finding
    assert result.findings == []
    assert set(result.tables) == {"docs"}  # tags is created by r3 itself
    assert result.tables["docs"].exists and result.tables["docs"].bytes


def test_autocommit_block_of_a_captured_revision_is_outside_the_transaction(
        tmp_path: Path, database_url: str) -> None:
    project = project_with_index(tmp_path)
    add_revision(project, "r3", "r2", upgrade='''
        rows = op.get_bind().execute(sa.text("SELECT id FROM docs")).fetchall()
        with op.get_context().autocommit_block():
            op.create_index("ix_docs_body", "docs", ["body"], postgresql_concurrently=True,
                            if_not_exists=True)
        op.create_index("ix_docs_id_title", "docs", ["id", "title"])''',
                 downgrade='op.drop_index("ix_docs_body", table_name="docs")')
    result = lint(settings_for(project, database_url), ["r3"])
    assert [u.via for u in result.units] == ["database"]
    assert [(f.rule, f.sql) for f in result.findings] == [
        ("require-concurrent-index-creation", "CREATE INDEX ix_docs_id_title ON docs (id, title)")]


def test_table_sizes_do_not_wait_behind_an_application_lock(tmp_path, database_url) -> None:
    """An ACCESS EXCLUSIVE lock held by the application must not hang the lint (gate)."""
    import time

    from sqlalchemy import text as sql_text

    from umbau.commands.lint import lint
    from umbau.postgres.connect import connect
    from umbau.settings import load_settings

    with connect(database_url) as conn:
        conn.execute(sql_text("CREATE TABLE big (id int PRIMARY KEY, v text)"))
        conn.commit()
    sql = tmp_path / "index.sql"
    sql.write_text("CREATE INDEX ix_big_v ON big (v);\n")
    settings = load_settings(cwd=tmp_path, environ={}, flags={"database_url": database_url})
    with connect(database_url) as holder:
        holder.execute(sql_text("LOCK TABLE big IN ACCESS EXCLUSIVE MODE"))
        started = time.monotonic()
        result = lint(settings, [str(sql)])
        assert time.monotonic() - started < 10
        holder.rollback()
    assert result.tables["big"].exists
    assert result.tables["big"].bytes is not None
