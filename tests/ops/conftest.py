"""Fixtures for the ops tests: a fresh :class:`ops_support.OpsProject` per test."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import make_project
from ops_support import BASE, OpsProject


@pytest.fixture
def project_factory(tmp_path: Path, database_url: str) -> Callable[[int], OpsProject]:
    def make(rows: int = 1000) -> OpsProject:
        made = OpsProject(make_project(tmp_path), database_url)
        made.add("r0", BASE.format(rows=rows), 'op.drop_table("docs")\nop.drop_table("owners")')
        return made

    return make


@pytest.fixture
def project(project_factory: Callable[[int], OpsProject]) -> OpsProject:
    made = project_factory(1000)
    made.upgrade("r0", allow_unsafe=True)
    return made
