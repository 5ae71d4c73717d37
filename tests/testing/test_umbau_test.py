"""`umbau test` against deliberately broken histories: each must be caught, naming the
revision and the difference."""

from __future__ import annotations

import json
import signal
import uuid
from pathlib import Path

import pytest
from helpers import add_revision, linear_project, make_project, settings_for

from umbau.cli import main
from umbau.errors import EnvironmentFailed
from umbau.testing.report import TestReport
from umbau.testing.stairway import TestOptions, run_checks
from umbau.testing.throwaway import throwaway_database


def run(project: Path, url: str, **options: object) -> TestReport:
    return run_checks(settings_for(project, url), url, TestOptions(**options))  # type: ignore[arg-type]


def only(report: TestReport, check: str) -> list[str]:
    return [f.describe() for f in report.failures if f.check == check]


def test_a_sound_history_passes(tmp_path: Path, database_url: str) -> None:
    report = run(linear_project(tmp_path, 4), database_url)
    assert report.ok, report.failures
    assert report.checks["stairway"] == "passed"
    assert report.checks["data"] == "passed"
    assert report.checks["idempotent"] == "passed"
    assert [r.revision for r in report.revisions] == ["r1", "r2", "r3", "r4"]
    assert all(r.downgrade_s is not None for r in report.revisions)


def test_a_downgrade_that_leaves_a_column_behind(tmp_path: Path, database_url: str) -> None:
    project = linear_project(tmp_path, 2)
    add_revision(project, "r3", "r2",
                 upgrade='op.add_column("t1", sa.Column("extra", sa.Integer))\n'
                         'op.create_index("ix_t1_extra", "t1", ["extra"])',
                 downgrade='op.drop_index("ix_t1_extra", table_name="t1")')
    report = run(project, database_url)
    assert not report.ok
    [failure] = report.failures_of("stairway")[:1]
    assert failure.revision == "r3"
    assert "column t1.extra: unexpected" in failure.details


def test_a_type_change_not_reverted_is_shown_as_such(tmp_path: Path, database_url: str) -> None:
    project = linear_project(tmp_path, 1)
    add_revision(project, "r2", "r1",
                 upgrade='op.alter_column("t1", "id", type_=sa.Integer)',
                 downgrade='op.alter_column("t1", "id", type_=sa.Integer)')
    report = run(project, database_url)
    details = report.failures_of("stairway")[0].details
    assert "column t1.id: type bigint -> integer" in details


def test_a_reupgrade_that_leaves_a_different_schema(tmp_path: Path, database_url: str) -> None:
    project = linear_project(tmp_path, 1)
    # The upgrade looks at a marker row that its own downgrade forgets to remove:
    # the second upgrade succeeds, but builds a different table.
    add_revision(project, "r2", "r1", upgrade='''
        conn = op.get_bind()
        seen = conn.execute(sa.text("SELECT count(*) FROM t1 WHERE v = 'marker'")).scalar()
        op.create_table("t2", sa.Column("id", sa.BigInteger if seen else sa.Integer,
                                        primary_key=True))
        op.execute("INSERT INTO t1 (id, v) VALUES (-1, 'marker') ON CONFLICT DO NOTHING")
    ''', downgrade='op.drop_table("t2")')
    report = run(project, database_url)
    [failure] = report.failures_of("stairway")
    assert failure.revision == "r2"
    assert "upgrading again" in failure.message
    assert "column t2.id: type integer -> bigint" in failure.details


def test_an_empty_downgrade(tmp_path: Path, database_url: str) -> None:
    project = linear_project(tmp_path, 2)
    add_revision(project, "r3", "r2", upgrade='op.create_index("ix_t2_v", "t2", ["v"])',
                 downgrade="pass")
    report = run(project, database_url)
    [failure] = report.failures_of("stairway")
    assert failure.revision == "r3"
    assert "empty downgrade()" in failure.message


def test_drift_between_models_and_database(tmp_path: Path, database_url: str) -> None:
    project = linear_project(tmp_path, 1)
    module = f"models_{uuid.uuid4().hex[:8]}"
    (project / f"{module}.py").write_text(
        "import sqlalchemy as sa\nmetadata = sa.MetaData()\n"
        "sa.Table('t1', metadata, sa.Column('id', sa.BigInteger, primary_key=True),\n"
        "         sa.Column('v', sa.Text), sa.Column('email', sa.Text))\n", encoding="utf-8")
    settings = settings_for(project, database_url, metadata=f"{module}:metadata")
    report = run_checks(settings, database_url)
    [failure] = report.failures_of("drift")
    assert any("email" in d for d in failure.details)
    assert report.checks["stairway"] == "passed"


def test_matching_models_pass_the_drift_check(tmp_path: Path, database_url: str) -> None:
    project = linear_project(tmp_path, 1)
    module = f"models_{uuid.uuid4().hex[:8]}"
    (project / f"{module}.py").write_text(
        "import sqlalchemy as sa\nmetadata = sa.MetaData()\n"
        "sa.Table('t1', metadata, sa.Column('id', sa.BigInteger, primary_key=True),\n"
        "         sa.Column('v', sa.Text))\n", encoding="utf-8")
    report = run_checks(settings_for(project, database_url, metadata=f"{module}:metadata"),
                        database_url)
    assert report.checks["drift"] == "passed", report.failures


def test_two_heads(tmp_path: Path, database_url: str) -> None:
    project = linear_project(tmp_path, 1)
    add_revision(project, "a2", "r1", upgrade='op.create_table("a", sa.Column("id", sa.Integer))',
                 downgrade='op.drop_table("a")')
    add_revision(project, "b2", "r1", upgrade='op.create_table("b", sa.Column("id", sa.Integer))',
                 downgrade='op.drop_table("b")')
    report = run(project, database_url)
    [failure] = report.failures_of("single-head")
    assert set(failure.details) == {"a2", "b2"}
    assert report.checks["stairway"] == "passed"  # both branches still stepped through


def test_a_merged_branch_history_passes(tmp_path: Path, database_url: str) -> None:
    project = linear_project(tmp_path, 1)
    add_revision(project, "a2", "r1", upgrade='op.create_table("a", sa.Column("id", sa.Integer))',
                 downgrade='op.drop_table("a")')
    add_revision(project, "b2", "r1", upgrade='op.create_table("b", sa.Column("id", sa.Integer))',
                 downgrade='op.drop_table("b")')
    add_revision(project, "m3", ("a2", "b2"))
    add_revision(project, "r4", "m3", upgrade='op.add_column("a", sa.Column("x", sa.Text))',
                 downgrade='op.drop_column("a", "x")')
    report = run(project, database_url)
    assert report.ok, [f.describe() for f in report.failures]
    assert [r.revision for r in report.revisions][-2:] == ["m3", "r4"]


def test_a_revision_that_only_works_on_an_empty_table(tmp_path: Path,
                                                      database_url: str) -> None:
    project = linear_project(tmp_path, 2)
    add_revision(project, "r3", "r2",
                 upgrade='op.add_column("t1", sa.Column("w", sa.Integer, nullable=False))',
                 downgrade='op.drop_column("t1", "w")')
    report = run(project, database_url)
    [failure] = report.failures_of("with-rows")
    assert failure.revision == "r3"
    assert "only on empty tables" in failure.message
    assert "contains null values" in failure.message
    assert report.checks["upgrade"] == "passed"


def test_a_data_step_that_loses_rows_of_an_untouched_table(tmp_path: Path,
                                                           database_url: str) -> None:
    project = linear_project(tmp_path, 2)
    add_revision(project, "r3", "r2", upgrade="op.execute(\"UPDATE t2 SET v = upper(v)\")",
                 downgrade="op.execute(\"UPDATE t2 SET v = lower(v)\")\n"
                           "op.execute(\"DELETE FROM t1\")")
    report = run(project, database_url)
    failures = report.failures_of("data")
    assert [f.revision for f in failures] == ["r3"]
    assert failures[0].details == ("table t1: 3 rows before the upgrade, 0 after the downgrade",)


def test_setup_hook_runs_before_the_first_revision(tmp_path: Path, server_url: str) -> None:
    project = make_project(tmp_path)
    (project / "squashed.sql").write_text(
        "CREATE TABLE legacy (id bigint PRIMARY KEY, name text NOT NULL);", encoding="utf-8")
    add_revision(project, "r1", None, upgrade='op.add_column("legacy", sa.Column("x", sa.Text))',
                 downgrade='op.drop_column("legacy", "x")')
    with throwaway_database(server_url) as url:
        report = run(project, url, setup="squashed.sql")
    assert report.ok, report.failures
    with throwaway_database(server_url) as url:
        without = run(project, url)
    assert [f.revision for f in without.failures_of("upgrade")] == ["r1"]


def test_a_failing_upgrade_stops_and_names_the_revision(tmp_path: Path,
                                                        database_url: str) -> None:
    project = linear_project(tmp_path, 1)
    add_revision(project, "r2", "r1", upgrade='op.execute("SELECT * FROM nowhere")',
                 downgrade="op.execute('SELECT 1')")
    report = run(project, database_url)
    [failure] = report.failures_of("upgrade")
    assert failure.revision == "r2"
    assert "nowhere" in failure.message
    assert report.checks["drift"].startswith("skipped")


def test_cli_json_junit_and_exit_code(tmp_path: Path, server_url: str,
                                      capsys: object) -> None:
    project = linear_project(tmp_path / "p", 2)
    add_revision(project, "r3", "r2", upgrade='op.create_index("ix", "t1", ["v"])',
                 downgrade="pass")
    junit = tmp_path / "junit.xml"
    code = main(["--script-location", str(project / "migrations"), "test", "--server",
                 server_url, "--format", "json", "--junit-xml", str(junit)])
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert code == 1
    data = json.loads(out)
    assert data["checks"]["stairway"] == "failed"
    assert data["failures"][0]["revision"] == "r3"
    xml = junit.read_text(encoding="utf-8")
    assert '<testcase classname="umbau" name="stairway"><failure' in xml


def test_cli_text_passes(tmp_path: Path, server_url: str, capsys: object) -> None:
    project = linear_project(tmp_path, 2)
    code = main(["--script-location", str(project / "migrations"), "test", "--server",
                 server_url, "--timings"])
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert code == 0, out
    assert "all checks passed" in out
    assert "ok   every downgrade reverses its upgrade" in out


def test_a_downgrade_that_only_works_on_empty_tables(tmp_path: Path,
                                                     database_url: str) -> None:
    project = make_project(tmp_path)
    add_revision(project, "r1", None,
                 upgrade='op.create_table("t", sa.Column("id", sa.BigInteger, primary_key=True),'
                         ' sa.Column("v", sa.Text, nullable=False))',
                 downgrade='op.drop_table("t")')
    # The downgrade restores NOT NULL without filling the values the upgrade cleared.
    add_revision(project, "r2", "r1",
                 upgrade='op.alter_column("t", "v", nullable=True)\n'
                         'op.execute("UPDATE t SET v = NULL")',
                 downgrade='op.alter_column("t", "v", nullable=False)')
    report = run(project, database_url)
    [failure] = report.failures_of("with-rows")
    assert failure.revision == "r2"
    assert "downgrade works only on empty tables" in failure.message
    assert report.checks["stairway"] == "passed"


def test_a_deliberate_refusal_to_downgrade_is_a_note(tmp_path: Path,
                                                     database_url: str) -> None:
    project = linear_project(tmp_path, 1)
    add_revision(project, "r2", "r1", upgrade='op.add_column("t1", sa.Column("x", sa.Text))',
                 downgrade='''
        op.execute("DO $$ BEGIN IF EXISTS (SELECT FROM t1) THEN "
                   "RAISE EXCEPTION 'rows in t1: restore the backup'; END IF; END $$")
        op.drop_column("t1", "x")
    ''')
    report = run(project, database_url)
    assert report.ok, [f.describe() for f in report.failures]
    assert any("r2: the downgrade refuses the generated rows (rows in t1" in n
               for n in report.notes)


def test_both_example_apps_pass(server_url: str) -> None:
    from umbau.commands.test import test
    from umbau.settings import load_settings

    root = Path(__file__).resolve().parents[2] / "examples"
    for name in ("etsy_sevdesk", "ablage"):
        settings = load_settings(cwd=root / name, environ={})
        report = test(settings, server_url=server_url)
        assert report.ok, (name, [f.describe() for f in report.failures])
        assert all(status == "passed" for status in report.checks.values()), report.checks
        assert len(report.revisions) >= 7


def test_rows_written_by_a_trigger_during_the_fill_are_still_checked(
        tmp_path: Path, database_url: str) -> None:
    # Refilling t1 (changed by r2) before r3 also writes audit rows through a trigger;
    # audit must still count as untouched by r3, so that its downgrade losing them fails.
    project = make_project(tmp_path)
    add_revision(project, "r1", None, upgrade='''
        op.create_table("t1", sa.Column("id", sa.BigInteger, primary_key=True),
                        sa.Column("v", sa.Text))
        op.create_table("audit", sa.Column("id", sa.BigInteger, sa.Identity(),
                                           primary_key=True), sa.Column("note", sa.Text))
        op.execute("CREATE FUNCTION log_t1() RETURNS trigger LANGUAGE plpgsql AS "
                   "$$ BEGIN INSERT INTO audit (note) VALUES (NEW.v); RETURN NEW; END $$")
        op.execute("CREATE TRIGGER t1_log AFTER INSERT ON t1 "
                   "FOR EACH ROW EXECUTE FUNCTION log_t1()")
    ''', downgrade='''
        op.drop_table("audit")
        op.drop_table("t1")
        op.execute("DROP FUNCTION log_t1()")
    ''')
    add_revision(project, "r2", "r1", upgrade='op.add_column("t1", sa.Column("w", sa.Text))',
                 downgrade='op.drop_column("t1", "w")')
    add_revision(project, "r3", "r2",
                 upgrade='op.create_table("t3", sa.Column("id", sa.Integer, primary_key=True))',
                 downgrade='op.drop_table("t3")\nop.execute("DELETE FROM audit")')
    report = run(project, database_url)
    failures = report.failures_of("data")
    assert [f.revision for f in failures] == ["r3"], [f.describe() for f in report.failures]
    assert failures[0].details[0].startswith("table audit: ")


def test_an_env_py_that_fails_outside_a_step_ends_the_run(tmp_path: Path,
                                                          database_url: str) -> None:
    project = linear_project(tmp_path, 1)
    env = project / "migrations" / "env.py"
    env.write_text(env.read_text(encoding="utf-8").replace(
        "config = context.config", "config = context.config\nraise RuntimeError('env broken')"),
        encoding="utf-8")
    with pytest.raises(EnvironmentFailed) as raised:  # one line, exit 19, env.py's line
        run(project, database_url)
    assert "env.py:" in str(raised.value) and "RuntimeError: env broken" in str(raised.value)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_and_sigterm_drop_the_throwaway_database(tmp_path: Path, server_url: str,
                                                        signum: int) -> None:
    import subprocess
    import sys
    import time

    from sqlalchemy import text

    from umbau.postgres.connect import connect

    project = linear_project(tmp_path, 1)
    add_revision(project, "r2", "r1", upgrade='op.execute("SELECT pg_sleep(60)")',
                 downgrade="op.execute('SELECT 1')")
    child = subprocess.Popen([sys.executable, "-m", "umbau", "--script-location",
                              str(project / "migrations"), "test", "--server", server_url,
                              "--no-lint"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        database = None
        with connect(server_url, autocommit=True) as conn:
            for _ in range(300):
                database = conn.execute(text(
                    "SELECT datname FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' "
                    "AND pid <> pg_backend_pid()")).scalar()
                if database is not None or child.poll() is not None:
                    break
                time.sleep(0.1)
        assert database is not None and database.startswith("umbau_test_"), child.poll()
        child.send_signal(signum)
        _, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode != 0, err  # 130 is documented; click turns it into Abort (1)
    with connect(server_url, autocommit=True) as conn:
        left = conn.execute(text("SELECT count(*) FROM pg_database WHERE datname = :d"),
                            {"d": database}).scalar()
    assert left == 0


def test_a_failing_setup_hook_is_a_one_line_error(tmp_path: Path, server_url: str,
                                                  capsys: object) -> None:
    project = linear_project(tmp_path, 1)
    (project / "broken.sql").write_text("CREATE TABLEX nope ();", encoding="utf-8")
    code = main(["--script-location", str(project / "migrations"), "test", "--server",
                 server_url, "--no-lint", "--setup", str(project / "broken.sql")])
    err = capsys.readouterr().err  # type: ignore[attr-defined]
    assert code == 2, err
    assert "broken.sql' failed: syntax error at or near \"TABLEX\"" in err
    assert "Traceback" not in err


def test_switched_off_checks_say_so(tmp_path: Path, database_url: str) -> None:
    project = linear_project(tmp_path, 2)
    report = run(project, database_url, skip=frozenset({"stairway", "idempotent"}))
    assert report.checks["stairway"] == "skipped: switched off"
    assert report.checks["idempotent"] == "skipped: switched off"
    # Rows are compared across downgrades: with no downgrades, data must not claim a pass.
    assert report.checks["data"].startswith("skipped: ")
    assert report.checks["upgrade"] == "passed"


def test_with_rows_switched_off(tmp_path: Path, database_url: str) -> None:
    project = linear_project(tmp_path, 1)
    add_revision(project, "r2", "r1",
                 upgrade='op.add_column("t1", sa.Column("w", sa.Integer, nullable=False))',
                 downgrade='op.drop_column("t1", "w")')
    report = run(project, database_url, skip=frozenset({"with-rows"}))
    assert report.ok, [f.describe() for f in report.failures]
    assert report.checks["with-rows"] == "skipped: switched off"
