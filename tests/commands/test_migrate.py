from __future__ import annotations

from pathlib import Path

import pytest
from helpers import add_revision, linear_project, settings_for
from sqlalchemy import text

from umbau.commands import doctor as doctor_cmd
from umbau.commands import info, migrate, new, status
from umbau.errors import (
    ConfirmationRequired,
    IrreversibleRevision,
    MigrationFailed,
    MultipleHeads,
    UnknownRevision,
)
from umbau.postgres.connect import connect

pytestmark = pytest.mark.db


def tables(url: str) -> set[str]:
    with connect(url) as conn:
        return set(conn.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars())


def history_rows(url: str) -> list[tuple[str, str, str, int]]:
    with connect(url) as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT revision, direction, outcome, attempts FROM umbau_history ORDER BY id"))]


def test_upgrade_records_history_with_checksums(tmp_path: Path, database_url: str) -> None:
    project = linear_project(tmp_path, 3)
    settings = settings_for(project, database_url)
    result = migrate.upgrade(settings)
    assert [s.revision for s in result.steps] == ["r1", "r2", "r3"]
    assert result.after == ("r3",)
    assert {"t1", "t2", "t3", "alembic_version", "umbau_history"} <= tables(database_url)
    assert history_rows(database_url) == [("r1", "upgrade", "success", 1),
                                          ("r2", "upgrade", "success", 1),
                                          ("r3", "upgrade", "success", 1)]
    with connect(database_url) as conn:
        sums = conn.execute(text("SELECT checksum FROM umbau_history")).scalars().all()
    assert all(len(s) == 64 for s in sums)
    again = migrate.upgrade(settings)
    assert again.steps == []


def test_status_and_check_codes(tmp_path: Path, database_url: str) -> None:
    project = linear_project(tmp_path, 2)
    settings = settings_for(project, database_url)
    before = status.status(settings)
    assert before.state == "pending" and before.exit_code == 3
    assert [p.revision for p in before.pending] == ["r1", "r2"]
    assert before.current == ()
    migrate.upgrade(settings, "r1")
    mid = status.status(settings)
    assert mid.current == ("r1",) and [p.revision for p in mid.pending] == ["r2"]
    migrate.upgrade(settings)
    after = status.check(settings)
    assert after.exit_code == 0 and after.last_run is not None
    assert after.last_run.revision == "r2"
    add_revision(project, "r3a", "r2")
    add_revision(project, "r3b", "r2")
    assert status.check(settings_for(project, database_url)).exit_code == 4


def test_each_revision_commits_on_its_own(tmp_path: Path, database_url: str) -> None:
    project = linear_project(tmp_path, 2)
    add_revision(project, "r3", "r2", upgrade='op.execute("SELECT 1/0")')
    settings = settings_for(project, database_url)
    with pytest.raises(MigrationFailed, match="revision r3 failed") as info_:
        migrate.upgrade(settings)
    assert info_.value.exit_code == 7
    assert status.status(settings).current == ("r2",)
    assert {"t1", "t2"} <= tables(database_url)
    rows = history_rows(database_url)
    assert rows[-1] == ("r3", "upgrade", "failed", 1)
    result = doctor_cmd.doctor(settings)
    assert "failed-run" in {f.code for f in result.findings}


def test_downgrade_needs_confirmation_when_it_drops(tmp_path: Path, database_url: str) -> None:
    project = linear_project(tmp_path, 2)
    settings = settings_for(project, database_url)
    migrate.upgrade(settings)
    with pytest.raises(ConfirmationRequired, match="drop table t2") as info_:
        migrate.downgrade(settings, "-1")
    assert info_.value.exit_code == 10
    assert "t2" in tables(database_url)
    migrate.downgrade(settings, "-1", yes=True)
    assert "t2" not in tables(database_url)
    with pytest.raises(ConfirmationRequired):
        migrate.downgrade(settings, "base", confirm=lambda preview: False)
    result = migrate.downgrade(settings, "base", confirm=lambda preview: True)
    assert result.after == ()
    assert not {"t1", "t2"} & tables(database_url)
    assert [r[1] for r in history_rows(database_url)][-2:] == ["downgrade", "downgrade"]


def test_downgrade_without_drops_needs_no_confirmation(tmp_path: Path, database_url: str) -> None:
    project = linear_project(tmp_path, 1)
    add_revision(project, "r2", "r1", upgrade='op.create_index("ix_t1_v", "t1", ["v"])',
                 downgrade='op.drop_index("ix_t1_v", table_name="t1")')
    settings = settings_for(project, database_url)
    migrate.upgrade(settings, allow_unsafe=True)  # a plain create_index: `umbau lint` refuses it
    assert migrate.downgrade(settings, "-1").after == ("r1",)


@pytest.mark.parametrize("body", ["pass", '"""nothing"""', "..."])
def test_empty_downgrade_refuses(tmp_path: Path, database_url: str, body: str) -> None:
    project = linear_project(tmp_path, 1)
    add_revision(project, "r2", "r1", upgrade='op.add_column("t1", sa.Column("w", sa.Text))',
                 downgrade=body)
    settings = settings_for(project, database_url)
    migrate.upgrade(settings)
    with pytest.raises(IrreversibleRevision, match="empty downgrade") as info_:
        migrate.downgrade(settings, "-1", yes=True)
    assert info_.value.exit_code == 11
    assert status.status(settings).current == ("r2",)


def test_not_implemented_downgrade_refuses_and_changes_nothing(tmp_path: Path,
                                                              database_url: str) -> None:
    project = linear_project(tmp_path, 1)
    result = new.new(settings_for(project, None), "add w")
    text_ = Path(result.path).read_text()
    assert "Breaking changes:" in text_ and "Migration guide:" in text_
    assert "raise NotImplementedError" in text_
    assert Path(result.path).name.endswith("_add_w.py") and Path(result.path).name[8] == "_"
    Path(result.path).write_text(text_.replace(
        "def upgrade() -> None:\n    pass",
        'def upgrade() -> None:\n    op.add_column("t1", sa.Column("w", sa.Text))'))
    settings = settings_for(project, database_url)
    migrate.upgrade(settings)
    with pytest.raises(IrreversibleRevision, match="not written yet"):
        migrate.downgrade(settings, "-1", yes=True)
    assert status.status(settings).current == (result.revision,)
    with connect(database_url) as conn:
        cols = conn.execute(text("SELECT column_name FROM information_schema.columns "
                                 "WHERE table_name = 't1'")).scalars().all()
    assert "w" in cols


def test_unknown_target_lists_close_matches(tmp_path: Path, database_url: str) -> None:
    project = linear_project(tmp_path, 2)
    add_revision(project, "abc123def", "r2")
    settings = settings_for(project, database_url)
    with pytest.raises(UnknownRevision, match="abc123def") as info_:
        migrate.upgrade(settings, "abc123dex")
    assert info_.value.exit_code == 9
    assert "abc123def" in info_.value.close
    assert tables(database_url) == set()


def test_upgrade_head_with_two_heads(tmp_path: Path, database_url: str) -> None:
    project = linear_project(tmp_path, 1)
    add_revision(project, "a", "r1")
    add_revision(project, "b", "r1")
    settings = settings_for(project, database_url)
    with pytest.raises(MultipleHeads, match="umbau merge") as info_:
        migrate.upgrade(settings)
    assert info_.value.exit_code == 4
    assert set(info_.value.heads) == {"a", "b"}
    assert tables(database_url) == set()
    merged = migrate.merge(settings, "merge heads")
    assert set(merged.down_revisions) == {"a", "b"}
    result = migrate.upgrade(settings_for(project, database_url))
    assert result.after == (merged.revision,)
    # the merge revision and its parents are empty in both directions: no confirmation
    assert migrate.downgrade(settings_for(project, database_url), "r1").after == ("r1",)


def test_stamp_and_unknown_database_revision(tmp_path: Path, database_url: str) -> None:
    project = linear_project(tmp_path, 2)
    settings = settings_for(project, database_url)
    migrate.upgrade(settings)
    with connect(database_url) as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'gone42'"))
        conn.commit()
    st = status.status(settings)
    assert st.state == "unknown-revision" and st.exit_code == 4
    found = doctor_cmd.doctor(settings)
    codes = {f.code: f for f in found.findings}
    assert "unknown-revision" in codes and "stamp --purge" in codes["unknown-revision"].fix
    migrate.stamp(settings, "r2", purge=True)
    assert status.status(settings).state == "up-to-date"
    assert history_rows(database_url)[-1][1] == "stamp"


def test_doctor_finds_edited_file_and_invalid_index(tmp_path: Path, database_url: str) -> None:
    project = linear_project(tmp_path, 2)
    settings = settings_for(project, database_url)
    migrate.upgrade(settings)
    assert doctor_cmd.doctor(settings).exit_code == 0
    path = project / "migrations" / "versions" / "r1.py"
    path.write_text(path.read_text() + "\n# edited\n")
    with connect(database_url, autocommit=True) as conn:
        conn.execute(text("INSERT INTO t1 (id, v) VALUES (1, 'x'), (2, 'x')"))
        with pytest.raises(Exception):  # noqa: B017 - the failed build leaves an invalid index
            conn.execute(text("CREATE UNIQUE INDEX CONCURRENTLY ix_bad ON t1 (v)"))
    result = doctor_cmd.doctor(settings_for(project, database_url))
    codes = {f.code for f in result.findings}
    assert {"edited-after-apply", "invalid-index"} <= codes
    assert result.exit_code == 1


def test_doctor_reports_drift_from_models(tmp_path: Path, database_url: str) -> None:
    project = linear_project(tmp_path, 1)
    (project / "drift_models.py").write_text(
        "import sqlalchemy as sa\nmetadata = sa.MetaData()\n"
        "sa.Table('t1', metadata, sa.Column('id', sa.BigInteger, primary_key=True),"
        " sa.Column('v', sa.Text), sa.Column('extra', sa.Integer))\n")
    settings = settings_for(project, database_url, metadata="drift_models:metadata")
    migrate.upgrade(settings)
    result = doctor_cmd.doctor(settings)
    drift = [f for f in result.findings if f.code == "drift"]
    assert drift and "extra" in drift[0].message


def test_history_and_show(tmp_path: Path, database_url: str) -> None:
    project = linear_project(tmp_path, 2)
    settings = settings_for(project, database_url)
    migrate.upgrade(settings, "r1")
    hist = info.history(settings, runs=True)
    assert [r.revision for r in hist.revisions] == ["r1", "r2"]
    assert hist.current == ("r1",)
    assert [r.revision for r in hist.runs or []] == ["r1"]
    shown = info.show(settings, "r2")
    assert shown.applied is False and shown.revision.down_revisions == ("r1",)
    assert info.show(settings, "r1").applied is True


def test_upgrade_sql_renders_without_database(tmp_path: Path) -> None:
    project = linear_project(tmp_path, 2)
    result = migrate.upgrade_sql(settings_for(project, "postgresql://nobody@127.0.0.1:1/none"))
    assert "CREATE TABLE t1" in result.sql and "CREATE TABLE t2" in result.sql


def test_autocommit_block_revision_works(tmp_path: Path, database_url: str) -> None:
    project = linear_project(tmp_path, 1)
    add_revision(project, "r2", "r1", upgrade='''
        with op.get_context().autocommit_block():
            op.create_index("ix_t1_v", "t1", ["v"], postgresql_concurrently=True)
        ''', downgrade='''
        with op.get_context().autocommit_block():
            op.drop_index("ix_t1_v", table_name="t1", postgresql_concurrently=True)
        ''')
    settings = settings_for(project, database_url)
    assert migrate.upgrade(settings).after == ("r2",)
    assert history_rows(database_url)[-1] == ("r2", "upgrade", "success", 1)
    assert migrate.downgrade(settings, "-1").after == ("r1",)


def test_statement_timeout_fails_without_retry(tmp_path: Path, database_url: str) -> None:
    project = linear_project(tmp_path, 1)
    add_revision(project, "r2", "r1", upgrade='op.execute("SELECT pg_sleep(2)")',
                 downgrade='op.execute("SELECT 1")')
    settings = settings_for(project, database_url, statement_timeout="200ms")
    with pytest.raises(MigrationFailed, match="statement timeout") as info_:
        migrate.upgrade(settings)
    assert info_.value.attempts == 1
    assert status.status(settings).current == ("r1",)


def test_new_autogenerate_from_models(tmp_path: Path, database_url: str) -> None:
    project = linear_project(tmp_path, 1)
    (project / "ag_models.py").write_text(
        "import sqlalchemy as sa\nmetadata = sa.MetaData()\n"
        "sa.Table('t1', metadata, sa.Column('id', sa.BigInteger, primary_key=True),"
        " sa.Column('v', sa.Text), sa.Column('due', sa.Date))\n")
    env = project / "migrations" / "env.py"
    env.write_text(env.read_text().replace(
        "target_metadata = None",
        f"import sys\nsys.path.insert(0, {str(project)!r})\n"
        "from ag_models import metadata as target_metadata"))
    settings = settings_for(project, database_url)
    migrate.upgrade(settings)
    created = new.new(settings, "add due")
    body = Path(created.path).read_text()
    assert "raise NotImplementedError" in body  # nothing autogenerated without the flag
    Path(created.path).unlink()
    created = new.new(settings, "add due", autogenerate=True)
    body = Path(created.path).read_text()
    assert "op.add_column('t1', sa.Column('due', sa.Date()" in body
    assert "op.drop_column('t1', 'due')" in body
    assert migrate.upgrade(settings_for(project, database_url)).after == (created.revision,)


def test_reading_commands_create_nothing(tmp_path: Path, database_url: str) -> None:
    project = linear_project(tmp_path, 2)
    settings = settings_for(project, database_url)
    status.status(settings)
    info.current(settings)
    info.history(settings, runs=True)
    doctor_cmd.doctor(settings)
    assert tables(database_url) == set()


def test_pyproject_only_alembic_config(tmp_path: Path, database_url: str) -> None:
    project = linear_project(tmp_path, 2)
    (project / "alembic.ini").unlink()
    (project / "umbau.toml").unlink()
    (project / "pyproject.toml").write_text(
        '[tool.alembic]\nscript_location = "%(here)s/migrations"\n'
        'prepend_sys_path = ["."]\n')
    settings = settings_for(project, database_url)
    assert settings.alembic_config == project / "pyproject.toml"
    assert migrate.upgrade(settings).after == ("r2",)
    assert status.status(settings).state == "up-to-date"


def test_a_step_whose_commit_fails_is_not_reported_done(tmp_path: Path,
                                                        database_url: str) -> None:
    project = linear_project(tmp_path, 1)
    add_revision(project, "r2", "r1", upgrade='''
        op.execute("CREATE TABLE child (id int PRIMARY KEY, t1_id bigint REFERENCES t1 (id) "
                   "DEFERRABLE INITIALLY DEFERRED)")
        op.execute("INSERT INTO child VALUES (1, 42)")
        ''', downgrade='op.drop_table("child")')
    events: list[str] = []
    settings = settings_for(project, database_url)
    with pytest.raises(MigrationFailed, match="revision r2 failed"):
        migrate.upgrade(settings, on_event=lambda e: events.append(f"{e.kind} {e.revision}"))
    assert "step_done r1" in events and "step_done r2" not in events
    assert status.status(settings).current == ("r1",)
    assert history_rows(database_url)[-1] == ("r2", "upgrade", "failed", 1)
    assert "child" not in tables(database_url)


def test_custom_version_table(tmp_path: Path, database_url: str) -> None:
    project = linear_project(tmp_path, 2)
    env = project / "migrations" / "env.py"
    env.write_text(env.read_text().replace(
        "        transaction_per_migration=True,",
        '        transaction_per_migration=True,\n        version_table="app_versions",'))
    settings = settings_for(project, database_url)
    assert status.status(settings).state == "pending"
    assert migrate.upgrade(settings).after == ("r2",)
    assert "app_versions" in tables(database_url) and "alembic_version" not in tables(database_url)
    assert status.check(settings).exit_code == 0
    assert migrate.downgrade(settings, "r1", yes=True).after == ("r1",)
    assert info.current(settings).current[0].revision == "r1"


def test_new_uses_the_projects_template_when_it_has_the_sections(tmp_path: Path) -> None:
    project = linear_project(tmp_path, 1)
    mako = project / "migrations" / "script.py.mako"
    mako.write_text(mako.read_text().replace('"""\nfrom __future__',
                                             '"""\n# house header\nfrom __future__'))
    created = new.new(settings_for(project, None), "with house header")
    assert "# house header" in Path(created.path).read_text()
    mako.write_text("${message}\n")  # alembic's plain kind of template: umbau's is used
    created = new.new(settings_for(project, None), "plain template")
    text_ = Path(created.path).read_text()
    assert "Migration guide:" in text_ and "# house header" not in text_


def test_downgrade_preview_attributes_each_drop_to_its_revision(tmp_path: Path,
                                                                database_url: str) -> None:
    project = linear_project(tmp_path, 3)
    add_revision(project, "r4", "r3", upgrade='op.execute("SELECT 1")',
                 downgrade='op.execute("SELECT 1")')
    settings = settings_for(project, database_url)
    migrate.upgrade(settings)
    preview = migrate.preview_downgrade(settings, "base")
    assert [s.revision for s in preview.steps] == ["r4", "r3", "r2", "r1"]
    assert preview.drops == {"r4": [], "r3": ["drop table t3"], "r2": ["drop table t2"],
                             "r1": ["drop table t1"]}
    assert preview.unrendered == {}
