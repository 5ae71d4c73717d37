"""Fixtures for the backup tests: a small shop schema with data, more fresh databases."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from backup_support import fill
from sqlalchemy import text

from umbau.postgres import scratch
from umbau.postgres.connect import connect
from umbau.settings import Settings


@pytest.fixture
def make_database(server_url: str) -> Iterator[Callable[[], str]]:
    """A factory of further fresh databases, all dropped afterwards."""
    names: list[str] = []

    def make() -> str:
        name = f"umbau_test_{uuid.uuid4().hex[:12]}"
        with connect(server_url, autocommit=True) as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        names.append(name)
        return scratch.database_url(server_url, name)

    yield make
    with connect(server_url, autocommit=True) as conn:
        for name in names:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def shop_url(database_url: str) -> str:
    fill(database_url)
    return database_url


@pytest.fixture
def settings(shop_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=shop_url, root=tmp_path,
                    sections={"backup": {"dir": "backups"}})
