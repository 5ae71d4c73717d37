"""Fixtures for the backup tests: a small shop schema with data, more fresh databases."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from backup_support import fill

from umbau.postgres import scratch
from umbau.settings import Settings


@pytest.fixture
def make_database(server_url: str) -> Iterator[Callable[[], str]]:
    """A factory of further fresh databases, all dropped afterwards."""
    names: list[str] = []

    def make() -> str:
        name = f"umbau_test_{uuid.uuid4().hex[:12]}"
        scratch.create_database(server_url, name)
        names.append(name)
        return scratch.database_url(server_url, name)

    yield make
    for name in names:
        scratch.drop_database(server_url, name)


@pytest.fixture
def shop_url(database_url: str) -> str:
    fill(database_url)
    return database_url


@pytest.fixture
def settings(shop_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=shop_url, root=tmp_path,
                    sections={"backup": {"dir": "backups"}})
