"""`umbau test` names every defect in one run, and tells defects from downgrades that are
irreversible by design and from generated values a revision refuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import add_revision, linear_project, make_project, settings_for

from umbau.cli import main
from umbau.testing.report import TestReport
from umbau.testing.stairway import TestOptions, run_checks


def run(project: Path, url: str, **options: object) -> TestReport:
    return run_checks(settings_for(project, url), url, TestOptions(**options))  # type: ignore[arg-type]


def failed_revisions(report: TestReport, check: str) -> list[str | None]:
    return [f.revision for f in report.failures_of(check)]


def trigger_and_fk_history(project: Path) -> None:
    """The issue's small case: r2's downgrade forgets its function, r3's downgrade drops
    the referenced table first."""
    make_project(project)
    add_revision(project, "r1", None, upgrade='''
        op.create_table("a", sa.Column("id", sa.BigInteger, primary_key=True),
                        sa.Column("v", sa.Text))
        op.create_table("b", sa.Column("id", sa.BigInteger, primary_key=True))
    ''', downgrade='op.drop_table("b")\nop.drop_table("a")')
    add_revision(project, "r2", "r1", upgrade='''
        op.execute("CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS "
                   "$$ BEGIN NEW.v := upper(NEW.v); RETURN NEW; END $$")
        op.execute("CREATE TRIGGER a_touch BEFORE INSERT ON a FOR EACH ROW "
                   "EXECUTE FUNCTION touch()")
    ''', downgrade='op.execute("DROP TRIGGER a_touch ON a")')
    add_revision(project, "r3", "r2", upgrade='''
        op.create_table("parent", sa.Column("id", sa.BigInteger, primary_key=True))
        op.create_table("child", sa.Column("id", sa.BigInteger, primary_key=True),
                        sa.Column("parent_id", sa.BigInteger, sa.ForeignKey("parent.id")))
    ''', downgrade='op.drop_table("parent")\nop.drop_table("child")')


def test_the_stairway_goes_on_after_failures(tmp_path: Path, database_url: str) -> None:
    trigger_and_fk_history(tmp_path)
    report = run(tmp_path, database_url)
    assert sorted(set(failed_revisions(report, "stairway"))) == ["r2", "r3"], report.failures
    assert report.checks["upgrade"] == "passed"
    r2, r3 = report.failures_of("stairway")[0], report.failures_of("stairway")[-1]
    assert "function touch(): unexpected" in r2.details
    # PostgreSQL's DETAIL and HINT are kept, and the revision file and line named.
    assert "because other objects depend on it (DETAIL: constraint child_parent_id_fkey on " \
           "table child depends on table parent; HINT:" in r3.message
    assert "(at migrations/versions/r3.py:2" in r3.message


def test_several_independent_defects_in_one_run(tmp_path: Path, database_url: str) -> None:
    project = linear_project(tmp_path, 2)
    add_revision(project, "r3", "r2", upgrade='op.add_column("t1", sa.Column("x", sa.Text))',
                 downgrade="op.execute('SELECT 1')")  # leaves the column behind
    add_revision(project, "r4", "r3", upgrade='op.create_index("ix_t2_v", "t2", ["v"])',
                 downgrade='op.drop_index("ix_t2_v", table_name="t2")')
    add_revision(project, "r5", "r4", upgrade='op.create_table("t5", sa.Column("id", '
                                              'sa.Integer, primary_key=True))',
                 downgrade='op.drop_table("t1")\nop.drop_table("t5")')  # loses t1
    add_revision(project, "r6", "r5", upgrade='op.add_column("t2", sa.Column("y", sa.Text))',
                 downgrade='op.alter_column("t2", "v", type_=sa.String(10))\n'
                           'op.drop_column("t2", "y")')
    report = run(project, database_url)
    assert sorted(set(failed_revisions(report, "stairway"))) == ["r3", "r5", "r6"], \
        [f.describe() for f in report.failures]
    assert failed_revisions(report, "data") == ["r5"]
    assert report.checks["upgrade"] == "passed"
    assert report.checks["idempotent"] == "passed"  # reached head, from the first upgrades


def test_irreversible_by_design_is_listed_apart(tmp_path: Path, database_url: str) -> None:
    project = linear_project(tmp_path, 1)
    add_revision(project, "r2", "r1", upgrade='op.add_column("t1", sa.Column("a", sa.Text))',
                 downgrade='raise NotImplementedError("r2 cannot be undone: restore a backup")')
    add_revision(project, "r3", "r2", upgrade="op.execute(\"UPDATE t1 SET v = upper(v)\")",
                 downgrade="pass")
    add_revision(project, "r4", "r3", upgrade='op.add_column("t1", sa.Column("b", sa.Text))',
                 downgrade="# umbau: irreversible the b values cannot be told apart\npass")
    add_revision(project, "r5", "r4", upgrade='op.add_column("t1", sa.Column("c", sa.Text))',
                 downgrade='op.drop_column("t1", "c")')
    report = run(project, database_url)
    assert report.ok, [f.describe() for f in report.failures]
    reasons = {i.revision: i.reason for i in report.irreversible}
    assert reasons == {
        "r2": "the downgrade refuses: NotImplementedError: r2 cannot be undone: restore a backup",
        "r3": "empty downgrade after a data-only upgrade",
        "r4": "marked irreversible: the b values cannot be told apart",
    }
    assert report.as_dict()["irreversible_by_design"][0]["revision"] == "r2"


def test_a_raising_downgrade_after_sql_is_still_a_defect(tmp_path: Path,
                                                         database_url: str) -> None:
    project = linear_project(tmp_path, 1)
    add_revision(project, "r2", "r1", upgrade='op.add_column("t1", sa.Column("a", sa.Text))',
                 downgrade='op.drop_column("t1", "a")\nraise RuntimeError("half way")')
    report = run(project, database_url)
    assert failed_revisions(report, "stairway") == ["r2"]
    assert not report.irreversible


def test_the_configured_floor_and_list(tmp_path: Path, database_url: str) -> None:
    project = linear_project(tmp_path, 4)
    for i in (1, 2, 4):  # every downgrade but r3's forgets its table
        add_revision(project, f"r{i}", f"r{i - 1}" if i > 1 else None,
                     upgrade=f'op.create_table("t{i}", sa.Column("id", sa.Integer))',
                     downgrade="op.execute('SELECT 1')")
    with (project / "umbau.toml").open("a", encoding="utf-8") as settings:
        settings.write('[tool.umbau.test]\nminimum_downgrade_revision = "r2"\n'
                       'irreversible = ["r4"]\n')
    report = run(project, database_url)
    assert report.ok, [f.describe() for f in report.failures]
    assert [i.revision for i in report.irreversible] == ["r1", "r2", "r4"]
    assert report.irreversible[0].reason == "at or below minimum_downgrade_revision r2"


def test_a_floor_that_names_no_revision_is_a_settings_error(tmp_path: Path,
                                                            database_url: str) -> None:
    from umbau.errors import SettingsError

    project = linear_project(tmp_path, 1)
    with (project / "umbau.toml").open("a", encoding="utf-8") as settings:
        settings.write('[tool.umbau.test]\nminimum_downgrade_revision = "nope"\n')
    with pytest.raises(SettingsError, match="names no revision"):
        run(project, database_url)


def test_only_irreversible_by_design_exits_0(tmp_path: Path, server_url: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    project = linear_project(tmp_path, 1)
    add_revision(project, "r2", "r1", upgrade='op.add_column("t1", sa.Column("a", sa.Text))',
                 downgrade='raise NotImplementedError("restore a backup")')
    code = main(["--script-location", str(project / "migrations"), "test", "--server",
                 server_url, "--no-lint"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "irreversible by design: r2 (the downgrade refuses: NotImplementedError: " \
           "restore a backup)" in out
    code = main(["--script-location", str(project / "migrations"), "test", "--server",
                 server_url, "--no-lint", "--format", "json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["irreversible_by_design"][0]["revision"] == "r2"


def test_a_revision_that_refuses_a_generated_value_is_a_note(tmp_path: Path,
                                                             database_url: str) -> None:
    project = make_project(tmp_path)
    add_revision(project, "r1", None, upgrade='''
        op.create_table("t", sa.Column("id", sa.BigInteger, primary_key=True),
                        sa.Column("mood", sa.Text))
    ''', downgrade='op.drop_table("t")')
    add_revision(project, "r2", "r1", upgrade='''
        op.execute("CREATE TYPE mood AS ENUM ('happy', 'sad')")
        op.execute("ALTER TABLE t ALTER COLUMN mood TYPE mood USING mood::mood")
    ''', downgrade='''
        op.execute("ALTER TABLE t ALTER COLUMN mood TYPE text")
        op.execute("DROP TYPE mood")
    ''')
    report = run(project, database_url)
    assert report.ok, [f.describe() for f in report.failures]
    [note] = [n for n in report.notes if n.startswith("r2:")]
    assert note.startswith("r2: the upgrade refuses a generated value (table t, column mood, "
                           "value 'mood-1000")
    assert 'invalid input value for enum mood' in note


def test_an_empty_downgrade_of_a_data_only_revision_is_a_noop(tmp_path: Path,
                                                               database_url: str,
                                                               capsys: pytest.CaptureFixture[str]
                                                               ) -> None:
    project = linear_project(tmp_path, 1)
    add_revision(project, "r2", "r1",
                 upgrade="op.execute(\"INSERT INTO t1 (id, v) VALUES (1, 'seed')\")",
                 downgrade="pass")
    add_revision(project, "r3", "r2", upgrade='op.add_column("t1", sa.Column("x", sa.Text))',
                 downgrade='op.drop_column("t1", "x")')
    args = ["--script-location", str(project / "migrations"), "--database-url", database_url]
    assert main([*args, "upgrade", "--allow-unsafe"]) == 0
    capsys.readouterr()
    code = main([*args, "downgrade", "r1", "--yes"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "note: revision r2: empty downgrade() after a data-only upgrade" in captured.err
    assert main([*args, "current", "--format", "json"]) == 0
    assert [c["revision"] for c in json.loads(capsys.readouterr().out)["current"]] == ["r1"]


def test_an_empty_downgrade_after_ddl_still_refuses(tmp_path: Path, database_url: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    project = linear_project(tmp_path, 1)
    add_revision(project, "r2", "r1", upgrade='op.execute("CREATE INDEX ix ON t1 (v)")',
                 downgrade="pass")
    args = ["--script-location", str(project / "migrations"), "--database-url", database_url]
    assert main([*args, "upgrade", "--allow-unsafe"]) == 0
    assert main([*args, "downgrade", "r1", "--yes"]) == 11
    assert "has an empty downgrade()" in capsys.readouterr().err


def test_a_revision_that_leaves_the_transaction_is_put_back(tmp_path: Path,
                                                           database_url: str) -> None:
    project = linear_project(tmp_path, 1)
    add_revision(project, "r2", "r1", upgrade='''
        with op.get_context().autocommit_block():
            op.execute("CREATE INDEX CONCURRENTLY ix_t1_v ON t1 (v)")
    ''', downgrade='op.execute("SELECT 1")')  # forgets the index
    add_revision(project, "r3", "r2", upgrade='op.add_column("t1", sa.Column("x", sa.Text))',
                 downgrade='op.drop_column("t1", "x")')
    report = run(project, database_url)
    assert failed_revisions(report, "stairway") == ["r2", "r2"], report.failures
    assert "index t1.ix_t1_v: unexpected" in report.failures_of("stairway")[0].details
    assert report.checks["upgrade"] == "passed" and report.checks["idempotent"] == "passed"


@pytest.mark.parametrize("how", [
    'op.create_foreign_key("orders_shop_fk", "orders", "shops", ["shop_id"], ["id"])',
    'op.execute("ALTER TABLE orders ADD CONSTRAINT orders_shop_fk FOREIGN KEY (shop_id) '
    'REFERENCES shops (id) NOT VALID")\n'
    'op.execute("ALTER TABLE orders VALIDATE CONSTRAINT orders_shop_fk")',
])
def test_generated_keys_meet_a_foreign_key_added_later(tmp_path: Path, database_url: str,
                                                       how: str) -> None:
    project = make_project(tmp_path)
    add_revision(project, "r1", None, upgrade='''
        op.create_table("shops", sa.Column("id", sa.BigInteger, primary_key=True))
        op.create_table("orders", sa.Column("id", sa.BigInteger, primary_key=True),
                        sa.Column("shop_id", sa.BigInteger, nullable=False))
    ''', downgrade='op.drop_table("orders")\nop.drop_table("shops")')
    add_revision(project, "r2", "r1", upgrade=how,
                 downgrade='op.drop_constraint("orders_shop_fk", "orders")')
    report = run(project, database_url)
    assert report.ok, [f.describe() for f in report.failures]
    assert not [n for n in report.notes if n.startswith("r2")], report.notes


def test_a_downgrade_that_truncates_an_untouched_table(tmp_path: Path,
                                                       database_url: str) -> None:
    # TRUNCATE is no DDL event and not in the transaction's row counters: still seen.
    project = linear_project(tmp_path, 2)
    add_revision(project, "r3", "r2", upgrade='op.add_column("t2", sa.Column("x", sa.Text))',
                 downgrade='op.drop_column("t2", "x")\nop.execute("TRUNCATE t1")')
    report = run(project, database_url)
    assert failed_revisions(report, "data") == ["r3"], [f.describe() for f in report.failures]
    assert report.failures_of("data")[0].details[0].startswith("table t1: 3 rows before")
