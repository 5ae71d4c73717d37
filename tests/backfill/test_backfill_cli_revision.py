"""The CLI (run, --dry-run, status, pause, resume, cancel, JSON) and run_in_revision."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.backfill.conftest import fill, scalar
from umbau.cli import main
from umbau.postgres.driver import connect_raw
from umbau.settings import Settings

DEFS = """
from umbau.backfill import Backfill

bump = Backfill(name="bump", table="items", set={"n": "n + 1"}, verify="n = 1",
                batch_size=400, max_batch_size=400)
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> list[str]:
    with connect_raw(database_url) as conn:
        fill(conn, rows=2000)
    (tmp_path / "bf_cli.py").write_text(DEFS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return ["--database-url", database_url, "backfill"]


def test_run_status_and_json(project: list[str], database_url: str,
                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*project, "run", "bf_cli:bump", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "2000 rows to change" in out and "rolled back" in out
    assert scalar(database_url, "SELECT max(n) FROM items") == 0
    assert main([*project, "run", "bf_cli:bump"]) == 0
    captured = capsys.readouterr()
    assert "backfill bump: done, 2000 rows" in captured.out
    assert "rows/s, ETA" in captured.err  # not a terminal: log lines, not a bar
    assert "verification `n = 1`: ok" in captured.out
    assert main([*project, "status", "bump", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)[0]
    assert data["status"] == "done" and data["rows_done"] == 2000
    assert data["source"] == "bf_cli:bump" and data["chunks"][0]["status"] == "done"
    assert main([*project, "status"]) == 0
    assert "bump" in capsys.readouterr().out
    assert main([*project, "run", "bf_cli:bump", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["already_done"] is True
    assert main([*project, "status", "nope"]) == 20


def test_pause_then_resume_runs_the_stored_source(project: list[str], database_url: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from umbau.backfill import run_backfill
    from umbau.backfill.api import load_backfill

    settings = Settings(database_url=database_url)
    # record the state with a source, then pause before anything ran
    calls: list[int] = []

    def stop_at_once(progress: object) -> None:
        if not calls:
            calls.append(1)
            assert main([*project, "pause", "bump"]) == 0

    result = run_backfill(settings, load_backfill("bf_cli:bump"), source="bf_cli:bump",
                          on_event=stop_at_once)
    assert result.status == "paused" and 0 < result.rows < 2000
    capsys.readouterr()
    assert main([*project, "run", "bf_cli:bump"]) == 20
    assert "is paused" in capsys.readouterr().err
    assert main([*project, "resume", "bump"]) == 0
    assert "done" in capsys.readouterr().out
    assert scalar(database_url, "SELECT count(*) FROM items WHERE n <> 1") == 0
    assert main([*project, "cancel", "bump"]) == 20  # done cannot be cancelled


def test_run_in_revision_through_umbau_upgrade(database_url: str, tmp_path: Path) -> None:
    """A revision adds a column, backfills it outside its transaction, then indexes it."""
    from tests.helpers import add_revision, make_project, settings_for
    from umbau.commands.migrate import upgrade

    with connect_raw(database_url) as conn:
        fill(conn, rows=3000)
    make_project(tmp_path)
    add_revision(tmp_path, "r1", None, upgrade="""
        from umbau.backfill import Backfill, run_in_revision
        op.add_column("items", sa.Column("slug", sa.Text()))
        result = run_in_revision(op, Backfill(name="slug", table="items",
                                              set={"slug": "'item-' || id"},
                                              verify="slug IS NOT NULL", batch_size=500))
        assert result.rows == 3000, result
        op.create_index("items_slug", "items", ["slug"])
    """, downgrade='op.drop_column("items", "slug")')
    upgrade(settings_for(tmp_path, database_url))
    assert scalar(database_url, "SELECT slug FROM items WHERE id = 7") == "item-7"
    assert scalar(database_url, "SELECT to_regclass('items_slug')") is not None
    assert scalar(database_url, "SELECT status FROM umbau_backfills") == "done"
    assert scalar(database_url, "SELECT version_num FROM alembic_version") == "r1"
