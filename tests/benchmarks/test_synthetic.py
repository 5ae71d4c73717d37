"""The synthetic history of benchmarks/synthetic.py runs up, down and up again."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from benchmarks.synthetic import make_history
from umbau.commands.migrate import downgrade, upgrade
from umbau.postgres.connect import connect
from umbau.settings import load_settings

pytestmark = pytest.mark.db

REVISIONS = 30


def _files(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): p.read_text(encoding="utf-8")
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _tables(url: str) -> set[str]:
    with connect(url) as conn:
        rows = conn.execute(text(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
            "AND table_type = 'BASE TABLE'"
        ))
        return {r[0] for r in rows}


def test_same_seed_same_files_other_seed_other_files(tmp_path: Path) -> None:
    first = _files(make_history(tmp_path / "a", REVISIONS, seed=7))
    again = _files(make_history(tmp_path / "b", REVISIONS, seed=7))
    other = _files(make_history(tmp_path / "c", REVISIONS, seed=8))
    assert first == again
    assert first != other
    versions = [name for name in first if name.startswith("migrations/versions/")]
    assert len(versions) == REVISIONS
    assert {"alembic.ini", "umbau.toml", "migrations/env.py"} <= set(first)


def test_history_is_varied(tmp_path: Path) -> None:
    folder = make_history(tmp_path / "p", 200, seed=0)
    source = "\n".join(p.read_text(encoding="utf-8")
                       for p in (folder / "migrations" / "versions").glob("*.py"))
    for operation in ("op.create_table(", "op.add_column(", "op.create_index(",
                      "op.create_check_constraint(", "CREATE VIEW", "DROP VIEW",
                      "type_=", "new_column_name=", "op.create_foreign_key(", "UPDATE ",
                      "INSERT INTO", "comment="):
        assert operation in source, operation
    assert source.count("op.create_table(") == 20


def test_refuses_a_folder_with_a_project(tmp_path: Path) -> None:
    make_history(tmp_path, 3)
    with pytest.raises(FileExistsError):
        make_history(tmp_path, 3)


def test_umbau_upgrades_downgrades_and_upgrades_again(tmp_path: Path, database_url: str) -> None:
    project = make_history(tmp_path / "project", REVISIONS, seed=3)
    settings = load_settings(cwd=project, environ={}, flags={"database_url": database_url})
    # the history has unsafe steps on purpose (plain indexes, validated constraints…)
    first = upgrade(settings, "head", allow_unsafe=True)
    assert len(first.steps) == REVISIONS
    assert len(_tables(database_url) - {"alembic_version", "umbau_history"}) == 3
    down = downgrade(settings, "base", yes=True)
    assert len(down.steps) == REVISIONS and down.after == ()
    assert _tables(database_url) <= {"alembic_version", "umbau_history"}
    again = upgrade(settings, "head", allow_unsafe=True)
    assert len(again.steps) == REVISIONS and again.after == first.after


def test_plain_alembic_upgrades_downgrades_and_upgrades_again(
    tmp_path: Path, database_url: str
) -> None:
    project = make_history(tmp_path / "project", REVISIONS, seed=4)
    alembic = Path(sys.executable).with_name("alembic")
    env = {**os.environ, "DATABASE_URL": database_url}
    for args in (["upgrade", "head"], ["downgrade", "base"], ["upgrade", "head"]):
        done = subprocess.run([str(alembic), *args], cwd=project, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    current = subprocess.run([str(alembic), "current"], cwd=project, env=env,
                             capture_output=True, text=True, timeout=60)
    head = sorted((project / "migrations" / "versions").glob("*.py"))[-1].name.split("_")[1]
    assert f"{head} (head)" in current.stdout
