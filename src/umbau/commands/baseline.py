"""``umbau baseline``: adopt a database that has tables but no version table.

A schema created before the project used Alembic (or whose ``alembic_version`` was
lost) is matched against the revisions: each revision is applied in turn to a
throwaway database on the same server, its catalog snapshot (``postgres/snapshot.py``,
the one ``umbau test`` uses) compared with the database's, and the newest revision
whose schema is identical is stamped, after confirmation. ``revision=`` names it
directly and skips the matching.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from umbau import alembic_bridge as bridge
from umbau.commands._common import database, open_project
from umbau.errors import ConfirmationRequired, NoMatchingRevision, UsageError
from umbau.events import EventHandler
from umbau.postgres import catalog, snapshot
from umbau.postgres.scratch import scratch_database
from umbau.runner import migrate
from umbau.settings import Settings


@dataclass
class Candidate:
    """One revision and how far its schema is from the database's."""

    revision: str
    differences: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"revision": self.revision, "differences": self.differences}


@dataclass
class BaselineResult:
    revision: str
    matched: bool  # False when named with revision= (not compared)
    compared: list[Candidate] = field(default_factory=list)
    after: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"revision": self.revision, "matched": self.matched,
                "compared": [c.as_dict() for c in self.compared], "after": list(self.after)}


def excluded_tables(settings: Settings) -> set[str]:
    """umbau's and Alembic's own tables, left out of every comparison."""
    return catalog.own_tables(settings.history_table)


def baseline(settings: Settings, *, revision: str | None = None, yes: bool = False,
             confirm: Callable[[BaselineResult], bool] | None = None,
             on_event: EventHandler | None = None) -> BaselineResult:
    """Find (or take) the revision the unversioned database is at, and stamp it.

    Raises UsageError (the database already has a revision, or no tables),
    NoMatchingRevision (exit 17: no revision's schema is the database's; the closest
    is named with its differences), ConfirmationRequired (neither ``yes`` nor
    ``confirm`` agreed). The database is changed only by the final stamp.
    """
    project = open_project(settings)
    found = _unversioned_snapshot(settings, project)
    if revision is not None:
        project.resolve_target(revision)
        result = BaselineResult(project.get(revision).revision, matched=False)
    else:
        result = _match(settings, project, found)
    if not yes and not (confirm and confirm(result)):
        raise ConfirmationRequired(
            f"the database's schema is that of revision {result.revision}: rerun with --yes "
            "to stamp it (nothing else is changed)")
    stamped = migrate(settings, project, "stamp", result.revision, on_event=on_event)
    result.after = stamped.after
    return result


def _unversioned_snapshot(settings: Settings, project: bridge.Project) -> snapshot.Snapshot:
    with database(settings) as conn:
        current = bridge.current_heads(project, conn)
        if current:
            raise UsageError(
                f"the database is already at {', '.join(current)}: baseline is for a "
                "database without a version table; use `umbau stamp` to move it")
        if not catalog.user_tables(conn, settings.history_table):
            raise UsageError("the database has no tables: nothing to baseline, run "
                             "`umbau upgrade` instead")
        found = snapshot.take(conn, excluded_tables(settings))
        conn.rollback()
    return found


def _match(settings: Settings, project: bridge.Project,
           found: snapshot.Snapshot) -> BaselineResult:
    """The newest revision whose snapshot equals ``found``; NoMatchingRevision if none."""
    compared = list(_compare_each(settings, project, found))
    for candidate in reversed(compared):  # newest first
        if not candidate.differences:
            return BaselineResult(candidate.revision, True, compared)
    closest = min(reversed(compared), key=lambda c: len(c.differences), default=None)
    if closest is None:
        raise NoMatchingRevision("the project has no revisions: create one with `umbau new`")
    raise NoMatchingRevision(
        f"no revision's schema matches the database; closest is {closest.revision} with "
        f"{len(closest.differences)} difference(s) (expected -> found: "
        f"{'; '.join(closest.differences[:3])}): align the schema, or name the revision "
        "with --revision")


def _compare_each(settings: Settings, project: bridge.Project,
                  found: snapshot.Snapshot) -> Iterator[Candidate]:
    """Apply the revisions oldest first on a throwaway database, comparing after each.

    The throwaway database lives on the same server (so extensions and collations are
    the same) and is dropped afterwards (``postgres/scratch.py``).
    """
    order = [r.revision for r in project.revisions()]
    with scratch_database(settings.require_database_url(), "umbau_baseline") as url:
        scratch = settings.with_overrides(database_url=url)
        scratch_project = bridge.Project(scratch, url)
        for revision in order:
            migrate(scratch, scratch_project, "upgrade", revision)
            with database(scratch) as conn:
                expected = snapshot.take(conn, excluded_tables(settings))
            yield Candidate(revision, expected.diff(found))
