"""Irreversible by design: downgrades a history means not to run, told apart from defects.

A revision's downgrade is irreversible by design (listed apart by ``umbau test``, not a
failure) when

- its file carries the marker ``# umbau: irreversible <reason>``;
- it is listed in ``[tool.umbau.test] irreversible = [...]``, or is at or below
  ``minimum_downgrade_revision`` (the floor pytest-alembic users know: downgrades are
  tested down to that revision, not past it);
- its downgrade raises before sending any SQL (``raise NotImplementedError``, or an
  explicit exception with a message);
- its downgrade is empty (``pass``) and its upgrade changed no schema (data only).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import exc as sa_exc

from umbau import alembic_bridge as bridge
from umbau.errors import SettingsError
from umbau.postgres.errors import describe_error
from umbau.settings import Settings


@dataclass(frozen=True)
class Irreversible:
    """One revision whose downgrade is not tested, and why."""

    revision: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"revision": self.revision, "reason": self.reason}


@dataclass(frozen=True)
class Floor:
    """``[tool.umbau.test]``: revisions listed as irreversible, and the floor revision."""

    listed: frozenset[str] = frozenset()
    minimum: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Floor:
        """Read ``irreversible`` (list of revision ids) and ``minimum_downgrade_revision``;
        SettingsError on other types."""
        section = settings.section("test")
        listed = section.get("irreversible", [])
        minimum = section.get("minimum_downgrade_revision")
        if not isinstance(listed, list) or not all(isinstance(r, str) for r in listed):
            raise SettingsError("[tool.umbau.test] irreversible must be a list of revision "
                                "ids, e.g. irreversible = [\"a1b2c3\"]")
        if minimum is not None and not isinstance(minimum, str):
            raise SettingsError("[tool.umbau.test] minimum_downgrade_revision must be a "
                                "revision id (a string)")
        return cls(frozenset(listed), minimum)

    def below(self, project: bridge.Project) -> set[str]:
        """Revisions at or below the floor (the floor and its ancestors)."""
        if self.minimum is None:
            return set()
        if not project.known(self.minimum):
            raise SettingsError(f"[tool.umbau.test] minimum_downgrade_revision = "
                                f"{self.minimum!r} names no revision: fix it")
        return {s.revision for s in project.script.walk_revisions("base", self.minimum)}


class Judge:
    """Decides, per revision, whether its downgrade is irreversible by design."""

    def __init__(self, settings: Settings, project: bridge.Project) -> None:
        floor = Floor.from_settings(settings)
        unknown = sorted(r for r in floor.listed if not project.known(r))
        if unknown:
            raise SettingsError(f"[tool.umbau.test] irreversible names unknown revisions "
                                f"{', '.join(unknown)}: fix the list")
        self.project = project
        self.listed = floor.listed
        self.below = floor.below(project)
        self.minimum = floor.minimum

    def before_downgrade(self, revision: str, changed_schema: bool) -> str | None:
        """Why ``revision``'s downgrade is not to be run, known before running it; None
        when it is to be run."""
        marked = marker(self.project.get(revision).path)
        if marked is not None:
            return f"marked irreversible: {marked}" if marked else "marked irreversible"
        if revision in self.listed:
            return "listed in [tool.umbau.test] irreversible"
        if revision in self.below:
            return f"at or below minimum_downgrade_revision {self.minimum}"
        if not changed_schema and bridge.has_empty_downgrade(self.project, revision):
            return "empty downgrade after a data-only upgrade"
        return None


def marker(path: str | Path) -> str | None:
    """The reason of a ``# umbau: irreversible <reason>`` line ('' without one), or None
    (:func:`umbau.alembic_bridge.irreversible_marker`, shared with ``umbau release``)."""
    return bridge.irreversible_marker(path)


def refused_before_sql(exc: BaseException, statements: int) -> str | None:
    """The downgrade's own refusal (a Python exception before any SQL), or None."""
    if statements or isinstance(exc, sa_exc.SQLAlchemyError):
        return None
    return f"the downgrade refuses: {describe_error(exc)}"
