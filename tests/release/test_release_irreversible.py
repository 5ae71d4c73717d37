"""Rollback ``auto`` and downgrades that cannot give the data back (real PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import add_revision
from release_support import release_project, settings, snapshot, write_plan

from umbau.errors import ReleaseFailed
from umbau.release import release_plan, run_release

pytestmark = pytest.mark.db

PLAN = """
STEP
kind = "preflight"
STEP
kind = "backup"
STEP
kind = "migrate"
STEP
kind = "smoke"
run = "echo smoke broke; exit 3"
"""
DATA_UP = 'op.execute("UPDATE orders SET amount = amount * 100")'


def _r4(folder: Path, downgrade: str) -> None:
    add_revision(folder, "r4irrev", "r3", upgrade=DATA_UP, downgrade=downgrade)


@pytest.mark.parametrize("downgrade", [
    'raise NotImplementedError("the old prices are gone")',
    "pass",
])
def test_auto_restores_when_a_downgrade_raises_or_leaves_data(
        tmp_path: Path, database_url: str, downgrade: str) -> None:
    folder = release_project(tmp_path, database_url)
    _r4(folder, downgrade)
    write_plan(folder, PLAN)
    before = snapshot(database_url, folder)
    checklist = release_plan(settings(folder, database_url), "1.1.0")
    assert checklist.rollback_method.startswith("restore the pre-release backup")
    assert "r4irrev" in checklist.rollback_method
    dry = run_release(settings(folder, database_url), "1.1.0", dry_run=True)
    assert dry.rollback_method == "restore"
    with pytest.raises(ReleaseFailed) as caught:
        run_release(settings(folder, database_url), "1.1.0")
    assert caught.value.exit_code == 35
    assert "restored" in str(caught.value)
    assert snapshot(database_url, folder) == before  # rows too: amount back to g * 10


def test_without_backup_a_data_only_revision_is_warned_and_named(
        tmp_path: Path, database_url: str) -> None:
    folder = release_project(tmp_path, database_url)
    _r4(folder, "pass")
    write_plan(folder, PLAN.replace('STEP\nkind = "backup"\n', ""))
    checklist = release_plan(settings(folder, database_url), "1.1.0")
    assert checklist.warnings and "r4irrev" in checklist.warnings[0]
    assert "**WARNING**" in checklist.markdown and "data changed by r4irrev" in \
        checklist.markdown
    dry = run_release(settings(folder, database_url), "1.1.0", dry_run=True)
    assert dry.rollback_method == "downgrade"
    assert dry.warnings and "r4irrev" in dry.warnings[0]
    with pytest.raises(ReleaseFailed) as caught:
        run_release(settings(folder, database_url), "1.1.0")
    message = str(caught.value)
    assert "downgraded to r1" in message
    assert "the data changes of r4irrev stay" in message
    result = caught.value.result
    assert result is not None and "r4irrev" in result.warnings[0]
    assert snapshot(database_url, folder)["revision"] == "r1"


def test_explicit_downgrade_with_a_data_only_revision_is_warned(
        tmp_path: Path, database_url: str) -> None:
    folder = release_project(tmp_path, database_url)
    _r4(folder, "pass")
    write_plan(folder, PLAN, header='rollback = "downgrade"')
    dry = run_release(settings(folder, database_url), "1.1.0", dry_run=True)
    assert dry.rollback_method == "downgrade"
    assert dry.warnings and 'use rollback = "restore"' in dry.warnings[0]
    checklist = release_plan(settings(folder, database_url), "1.1.0")
    assert "data changed by r4irrev" in checklist.markdown


@pytest.mark.parametrize(("declared", "named"), [
    ('irreversible = ["r3"]', "r3 cannot be downgraded: listed in [tool.umbau.test] "
                              "irreversible"),
    ('minimum_downgrade_revision = "r2"', "r2 cannot be downgraded: at or below "
                                          "[tool.umbau.test] minimum_downgrade_revision r2"),
])
def test_revisions_declared_irreversible_for_umbau_test_are_restored(
        tmp_path: Path, database_url: str, declared: str, named: str) -> None:
    """The project's own word in [tool.umbau.test] (what `umbau test` reads) counts too:
    auto rollback restores instead of running a downgrade the project disowns."""
    folder = release_project(tmp_path, database_url)
    toml = folder / "umbau.toml"
    toml.write_text(toml.read_text() + f"\n[tool.umbau.test]\n{declared}\n", encoding="utf-8")
    write_plan(folder, PLAN)
    before = snapshot(database_url, folder)
    checklist = release_plan(settings(folder, database_url), "1.1.0")
    assert checklist.rollback_method.startswith("restore the pre-release backup")
    assert named in checklist.rollback_method
    with pytest.raises(ReleaseFailed) as caught:
        run_release(settings(folder, database_url), "1.1.0")
    assert "restored" in str(caught.value)
    assert snapshot(database_url, folder) == before
