"""The shape of both examples: files, revision docstrings, release maps."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from example_support import EXAMPLES, PACKAGES, example_module

from umbau.alembic_bridge import Project
from umbau.settings import load_settings

FILE_NAME = re.compile(r"^\d{8}_\d{4}_[a-z0-9_]+\.py$")


def revision_files(example: str) -> list[Path]:
    return sorted((EXAMPLES / example / "migrations" / "versions").glob("*.py"))


@pytest.mark.parametrize("example", sorted(PACKAGES))
def test_files_are_where_the_demo_expects_them(example: str) -> None:
    folder = EXAMPLES / example
    package = PACKAGES[example]
    for name in ("README.md", "umbau.toml", "alembic.ini", "migrations/env.py",
                 "migrations/script.py.mako", f"{package}/__init__.py",
                 f"{package}/models.py", f"{package}/datagen.py"):
        assert (folder / name).is_file(), name
    settings = load_settings(cwd=folder, environ={})
    assert settings.alembic_config == folder / "alembic.ini"
    assert settings.metadata == f"{package}.models:Base.metadata"


@pytest.mark.parametrize("example", sorted(PACKAGES))
def test_revision_files_are_named_and_documented(example: str) -> None:
    files = revision_files(example)
    assert files
    for path in files:
        assert FILE_NAME.match(path.name), path.name
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        assert "\nBreaking changes:\n- " in doc, path.name
        assert "\nMigration guide:\n- " in doc, path.name
        source = path.read_text(encoding="utf-8")
        assert "def downgrade() -> None:" in source, path.name
        assert "NotImplementedError" not in source, path.name


@pytest.mark.parametrize("example", sorted(PACKAGES))
def test_releases_follow_the_history_in_order(example: str) -> None:
    releases = example_module(example).RELEASES
    project = Project(load_settings(cwd=EXAMPLES / example, environ={}))
    order = [info.revision for info in project.revisions()]  # oldest first
    assert len(project.heads()) == 1
    positions = [order.index(revision) for revision in releases.values()]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    assert list(releases.values())[-1] == project.heads()[0]
    # the file names sort in history order too
    assert [p.stem for p in revision_files(example)] == [
        Path(project.get(rev).path).stem for rev in order]
