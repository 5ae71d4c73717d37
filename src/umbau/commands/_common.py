"""Helpers shared by the commands."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Connection

from umbau.alembic_bridge import Project
from umbau.postgres.connect import connect
from umbau.settings import Settings


def open_project(settings: Settings) -> Project:
    return Project(settings, settings.database_url)


@contextmanager
def database(settings: Settings) -> Iterator[Connection]:
    with connect(settings.require_database_url()) as conn:
        yield conn
