"""Fixtures of the fleet tests: a factory of Etsy databases at release 1.0.0 (some of
them broken on purpose), and a control database per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fleet_support import RELEASE_1_0, Fleet, etsy_settings
from sqlalchemy import text

from umbau.commands.migrate import upgrade
from umbau.postgres.connect import connect
from umbau.postgres.scratch import create_database, database_url, drop_database


@pytest.fixture(scope="session")
def etsy_template(server_url: str) -> Iterator[str]:
    """A database at the Etsy example's 1.0.0, the template of every fleet database."""
    name = f"umbau_fleet_tpl_{uuid.uuid4().hex[:8]}"
    create_database(server_url, name)
    upgrade(etsy_settings().with_overrides(database_url=database_url(server_url, name)),
            RELEASE_1_0, backup="never")
    yield name
    drop_database(server_url, name)


@pytest.fixture
def make_fleet(server_url: str, etsy_template: str) -> Iterator[Fleet]:
    """``make_fleet(n, broken={3})``: n databases at 1.0.0 (name -> URL); the broken ones
    have a ``shops`` table in the way of the first 1.1.0 revision. Dropped afterwards."""
    names: list[str] = []

    def make(count: int, broken: set[int] | frozenset[int] = frozenset()) -> dict[str, str]:
        prefix = f"shop_{uuid.uuid4().hex[:6]}"
        fleet = {}
        for i in range(count):
            name = f"{prefix}_{i:02d}"
            create_database(server_url, name, template=etsy_template)
            names.append(name)
            fleet[name] = database_url(server_url, name)
            if i in broken:
                with connect(fleet[name]) as conn:
                    conn.execute(text("CREATE TABLE shops (id int)"))
                    conn.commit()
        return fleet

    yield make
    for name in names:
        drop_database(server_url, name)
