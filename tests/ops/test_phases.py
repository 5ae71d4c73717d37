"""Pre- and post-deploy phases: `upgrade --phase`, `check --phase pre`, `status`."""

from __future__ import annotations

import json

import pytest
from ops_support import OpsProject

from umbau.cli import main
from umbau.errors import RevisionFileError

pytestmark = pytest.mark.db


def run(project: OpsProject, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["--config", str(project.path / "umbau.toml"), "--database-url", project.url,
                 *args])
    out, _ = capsys.readouterr()
    return code, out


@pytest.fixture
def phased(project: OpsProject) -> OpsProject:
    """r1 pre (expand), r2 and r3 post (contract): one release's revisions."""
    project.add("r1", 'op.add_column("docs", sa.Column("a", sa.Text))',
                'op.drop_column("docs", "a")')
    project.add("r2", '# umbau: ignore[drop-column] the test needs a post-deploy drop\n'
                      'op.drop_column("docs", "code")',
                'op.add_column("docs", sa.Column("code", sa.String(10)))', phase="post")
    project.add("r3", 'op.add_column("docs", sa.Column("b", sa.Text))',
                'op.drop_column("docs", "b")', phase="post")
    return project


def test_pre_phase_stops_before_the_first_post_deploy_revision(
        phased: OpsProject, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(phased, capsys, "check", "--phase", "pre")[0] == 3
    code, out = run(phased, capsys, "upgrade", "--phase", "pre", "--format", "json")
    assert code == 0 and [s["revision"] for s in json.loads(out)["steps"]] == ["r1"]
    code, out = run(phased, capsys, "check", "--phase", "pre")
    assert code == 0 and "2 post-deploy revision(s) pending" in out
    assert run(phased, capsys, "check")[0] == 3  # the plain check still sees r2 and r3
    code, out = run(phased, capsys, "upgrade", "--phase", "pre", "--format", "json")
    assert code == 0 and json.loads(out)["steps"] == []  # nothing before r2 left
    code, out = run(phased, capsys, "upgrade", "--phase", "post", "--format", "json")
    assert [s["revision"] for s in json.loads(out)["steps"]] == ["r2", "r3"]
    assert run(phased, capsys, "check", "--phase", "pre")[0] == 0
    assert run(phased, capsys, "check")[0] == 0


def test_check_pre_exits_0_only_when_nothing_but_post_revisions_is_pending(
        phased: OpsProject, capsys: pytest.CaptureFixture[str]) -> None:
    phased.add("r4", 'op.add_column("docs", sa.Column("c", sa.Text))',
               'op.drop_column("docs", "c")')  # pre, behind the post-deploy r2 and r3
    run(phased, capsys, "upgrade", "--phase", "pre")
    code, out = run(phased, capsys, "check", "--phase", "pre", "--format", "json")
    assert code == 3
    assert [p["phase"] for p in json.loads(out)["pending"]] == ["post", "post", "pre"]


def test_status_shows_the_phase_of_each_pending_revision(
        phased: OpsProject, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(phased, capsys, "status", "--format", "json")
    assert code == 0
    assert [(p["revision"], p["phase"]) for p in json.loads(out)["pending"]] == [
        ("r1", "pre"), ("r2", "post"), ("r3", "post")]
    _, out = run(phased, capsys, "status")
    assert "post" in out.split("r2", 1)[1].splitlines()[0]


def test_plain_upgrade_runs_both_phases_in_order(phased: OpsProject,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    _, out = run(phased, capsys, "upgrade", "--format", "json")
    assert [s["revision"] for s in json.loads(out)["steps"]] == ["r1", "r2", "r3"]


def test_a_bad_phase_value_names_the_file(project: OpsProject) -> None:
    project.add("r1", "pass", phase="later")
    with pytest.raises(RevisionFileError, match=r"r1\.py: phase = 'later': use \"pre\""):
        project.upgrade()


def test_phase_and_sql_do_not_mix(phased: OpsProject, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--config", str(phased.path / "umbau.toml"), "--database-url", phased.url,
                 "upgrade", "--sql", "--phase", "pre"])
    _, err = capsys.readouterr()
    assert code == 2 and "--phase needs the database" in err


def test_a_pre_phase_with_nothing_to_do_reports_where_the_database_is(
        phased: OpsProject, capsys: pytest.CaptureFixture[str]) -> None:
    run(phased, capsys, "upgrade", "r1")
    code, out = run(phased, capsys, "upgrade", "--phase", "pre")
    assert code == 0 and "the database is at r1" in out
