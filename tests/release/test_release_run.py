"""umbau release run: the steps, the record, the rollback (real PostgreSQL, real processes)."""

from __future__ import annotations

from pathlib import Path

import pytest
from release_support import release_project, release_rows, settings, snapshot, write_plan
from sqlalchemy import text

from umbau.errors import ReleaseFailed, ReleasePlanError
from umbau.events import Event
from umbau.postgres.connect import connect
from umbau.release import release_history, release_plan, release_status, run_release

pytestmark = pytest.mark.db

BASIC = """
STEP
kind = "preflight"
commands = ["true"]
STEP
kind = "backup"
STEP
kind = "command"
name = "stop services"
run = "echo stopped >> services.log"
undo = "echo started >> services.log"
STEP
kind = "migrate"
target = "head"
STEP
kind = "smoke"
run = "test -f services.log"
"""


def test_a_release_runs_every_step_once_and_records_it(tmp_path: Path,
                                                       database_url: str) -> None:
    folder = release_project(tmp_path, database_url)
    write_plan(folder, BASIC)
    events: list[Event] = []
    result = run_release(settings(folder, database_url), "1.1.0", on_event=events.append)
    assert result.outcome == "released"
    assert result.rollback_method == "downgrade"
    assert [s.outcome for s in result.steps] == ["done"] * 5
    assert (folder / "services.log").read_text() == "stopped\n"
    assert snapshot(database_url, folder)["revision"] == "r3"
    assert release_rows(database_url) == [
        ("preflight", "preflight", "done"), ("backup", "backup", "done"),
        ("stop services", "command", "done"), ("migrate", "migrate", "done"),
        ("smoke", "smoke", "done")]
    starts = [e for e in events if e.kind == "release_step_start"]
    dones = [e for e in events if e.kind == "release_step_done"]
    assert [e.data["step"] for e in starts] == [e.data["step"] for e in dones]
    assert dones[0].data == {"version": "1.1.0", "step": "preflight", "kind": "preflight",
                             "outcome": "done"}
    assert all(e.duration is not None and e.duration >= 0 for e in dones)
    backup_step = result.steps[1]
    assert Path(backup_step.detail["backup_path"]).exists()
    # a second run: already released, nothing runs again
    again = run_release(settings(folder, database_url), "1.1.0")
    assert again.outcome == "already released"
    assert (folder / "services.log").read_text() == "stopped\n"
    status = release_status(settings(folder, database_url)).as_dict()
    assert status["runs"][0]["state"] == "released"
    assert {s["step"] for s in status["steps"]} == {"preflight", "backup", "stop services",
                                                   "migrate", "smoke"}
    assert set(status["steps"][0]) >= {"version", "step", "outcome", "finished_at"}
    assert len(release_history(settings(folder, database_url)).rows) == 5


def test_a_failing_smoke_test_rolls_everything_back(tmp_path: Path,
                                                    database_url: str) -> None:
    folder = release_project(tmp_path, database_url)
    write_plan(folder, BASIC.replace('run = "test -f services.log"',
                                     'run = "echo smoke broke; exit 3"'))
    before = snapshot(database_url, folder)
    with pytest.raises(ReleaseFailed) as caught:
        run_release(settings(folder, database_url), "1.1.0")
    assert caught.value.exit_code == 35
    assert "smoke" in str(caught.value) and "exited 3: smoke broke" in str(caught.value)
    assert snapshot(database_url, folder) == before
    assert (folder / "services.log").read_text() == "stopped\nstarted\n"
    assert release_rows(database_url) == [
        ("preflight", "preflight", "undone"), ("backup", "backup", "undone"),
        ("stop services", "command", "undone"), ("migrate", "migrate", "undone"),
        ("smoke", "smoke", "failed")]
    assert release_status(settings(folder, database_url)).runs[0]["state"] == "rolled back"


def test_plan_checklist_fills_in_the_values(tmp_path: Path, database_url: str) -> None:
    folder = release_project(tmp_path, database_url)
    write_plan(folder, BASIC)
    checklist = release_plan(settings(folder, database_url), "1.1.0")
    text_ = checklist.markdown
    assert text_.startswith("# Release 1.1.0 (from 1.0.0)")
    assert "- pending: r2, r3" in text_
    assert "downgrade (every pending revision has a downgrade)" in text_
    assert str(folder / "backups") in text_
    assert "- [ ] 3. **stop services** (command): `echo stopped >> services.log`" in text_
    assert "- [ ] stop services: `echo started >> services.log`" in text_
    # migrate: r1's upgrade in umbau_history, times the 2 pending revisions
    assert checklist.estimates["migrate"] is not None and checklist.estimates["migrate"] > 0
    assert checklist.estimates["stop services"] is None  # never ran anywhere
    assert "some steps never ran" in text_
    run_release(settings(folder, database_url), "1.1.0")
    again = release_plan(settings(folder, database_url), "1.1.0")
    assert again.estimates["stop services"] is not None
    assert all(v is not None for v in again.estimates.values())
    assert "some steps never ran" not in again.markdown


def test_no_backup_and_an_irreversible_revision_is_refused_before_anything(
        tmp_path: Path, database_url: str) -> None:
    folder = release_project(tmp_path, database_url, r3_down="pass")
    write_plan(folder, BASIC.replace('STEP\nkind = "backup"\n', ""))
    before = snapshot(database_url, folder)
    with pytest.raises(ReleasePlanError, match="no backup step comes before"):
        run_release(settings(folder, database_url), "1.1.0")
    assert snapshot(database_url, folder) == before
    assert not (folder / "services.log").exists()
    with connect(database_url) as conn:
        assert conn.execute(text("SELECT count(*) FROM umbau_releases")).scalar() == 0


def test_preflight_refuses_without_disk_for_the_backup(tmp_path: Path,
                                                       database_url: str) -> None:
    folder = release_project(tmp_path, database_url)
    (folder / "umbau.toml").write_text((folder / "umbau.toml").read_text()
                                       + 'space_margin = "1000000TB"\n')
    write_plan(folder, BASIC)
    before = snapshot(database_url, folder)
    with pytest.raises(ReleaseFailed, match="not enough free disk for the backup"):
        run_release(settings(folder, database_url), "1.1.0")
    assert snapshot(database_url, folder) == before
    assert release_rows(database_url) == [("preflight", "preflight", "failed")]
    assert not (folder / "backups").exists()


def test_dry_run_and_unset_variables(tmp_path: Path, database_url: str) -> None:
    folder = release_project(tmp_path, database_url)
    write_plan(folder, BASIC + 'STEP\nkind = "health"\nurl = "http://${APP_HOST}/health"\n')
    with pytest.raises(ReleasePlanError, match=r"\$\{APP_HOST\} is not set"):
        run_release(settings(folder, database_url), "1.1.0", dry_run=True)
    result = run_release(settings(folder, database_url), "1.1.0", dry_run=True,
                         environ={"APP_HOST": "127.0.0.1:1"})
    assert result.outcome == "dry run" and result.rollback_method == "downgrade"
    assert [s.outcome for s in result.steps] == ["planned"] * 6
    with connect(database_url) as conn:
        assert conn.execute(text("SELECT to_regclass('umbau_releases')")).scalar() is None


def test_umbau_releases_is_not_part_of_the_models(tmp_path: Path, database_url: str) -> None:
    """Autogenerate after a release: the state table is umbau's, never a drop to write."""
    from umbau.commands import new
    from umbau.errors import NoChangesDetected

    folder = release_project(tmp_path, database_url)
    write_plan(folder, BASIC)
    run_release(settings(folder, database_url), "1.1.0")
    (folder / "release_models.py").write_text(
        "import sqlalchemy as sa\nmetadata = sa.MetaData()\n"
        "sa.Table('orders', metadata, sa.Column('id', sa.Integer, primary_key=True),\n"
        "         sa.Column('amount', sa.Integer), sa.Column('total', sa.Integer))\n"
        "sa.Table('shops', metadata, sa.Column('id', sa.Integer, primary_key=True))\n")
    env = folder / "migrations" / "env.py"
    env.write_text(env.read_text().replace(
        "target_metadata = None",
        f"import sys\nsys.path.insert(0, {str(folder)!r})\n"
        "from release_models import metadata as target_metadata"))
    with pytest.raises(NoChangesDetected):
        new.new(settings(folder, database_url), "nothing", autogenerate=True)
