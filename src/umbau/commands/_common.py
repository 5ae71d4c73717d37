"""Helpers shared by the commands."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

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


@dataclass
class NewRevisionResult:
    """A revision file written by ``umbau new`` or ``umbau merge``."""

    revision: str
    path: str
    message: str
    down_revisions: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"revision": self.revision, "path": self.path, "message": self.message,
                "down_revisions": list(self.down_revisions)}
