"""Fixtures for the example applications: one of them on a fresh database."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from example_support import Example


@pytest.fixture
def etsy(database_url: str) -> Example:
    return Example("etsy_sevdesk", database_url)


@pytest.fixture
def ablage(database_url: str) -> Example:
    return Example("ablage", database_url, allow_unsafe=True)


@pytest.fixture
def make_example(database_url: str) -> Callable[[str], Example]:
    return lambda name: Example(name, database_url, allow_unsafe=name == "ablage")
