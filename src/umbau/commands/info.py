"""``umbau history``, ``show``, ``heads`` and ``current``: reading the scripts and the database."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from umbau import alembic_bridge as bridge
from umbau.commands._common import database, open_project
from umbau.errors import DatabaseError, SettingsError
from umbau.postgres import history as history_table
from umbau.settings import Settings


@dataclass
class HistoryResult:
    revisions: list[bridge.RevisionInfo] = field(default_factory=list)
    current: tuple[str, ...] = ()
    runs: list[history_table.HistoryRow] | None = None

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "revisions": [
                {**r.as_dict(), "is_current": r.revision in self.current} for r in self.revisions
            ],
            "current": list(self.current),
        }
        if self.runs is not None:
            data["runs"] = [r.as_dict() for r in self.runs]
        return data


def history(settings: Settings, *, runs: bool = False, limit: int | None = None) -> HistoryResult:
    """The revisions oldest first; with ``runs``, umbau_history's rows newest first."""
    project = open_project(settings)
    result = HistoryResult(revisions=project.revisions())
    if settings.database_url:
        try:
            with database(settings) as conn:
                result.current = bridge.current_heads(project, conn)
                if runs:
                    result.runs = history_table.read(conn, settings.history_table, limit)
        except DatabaseError:
            if runs:
                raise
    elif runs:
        raise SettingsError("--runs reads the database: set database_url")
    return result


@dataclass
class ShowResult:
    revision: bridge.RevisionInfo
    doc: str
    checksum: str | None
    applied: bool | None

    def as_dict(self) -> dict[str, Any]:
        return {**self.revision.as_dict(), "doc": self.doc, "checksum": self.checksum,
                "applied": self.applied}


def show(settings: Settings, revision: str) -> ShowResult:
    """One revision: message, parents, file, full docstring, whether it is applied."""
    project = open_project(settings)
    rev = project.resolve_target(revision)
    scripts = project.script.get_revisions(rev)
    if len(scripts) != 1 or scripts[0] is None:
        raise project.unknown(revision)
    script = scripts[0]
    info = project.get(script.revision)
    applied: bool | None = None
    if settings.database_url:
        try:
            with database(settings) as conn:
                current = bridge.current_heads(project, conn)
            applied = any(
                script.revision == c or script.revision in _ancestors(project, c)
                for c in current if project.known(c)
            )
        except DatabaseError:
            applied = None
    return ShowResult(revision=info, doc=(script.longdoc or script.doc or "").strip(),
                      checksum=project.checksum(script.revision), applied=applied)


def _ancestors(project: bridge.Project, revision: str) -> set[str]:
    return {s.revision for s in project.script.walk_revisions("base", revision)}


@dataclass
class HeadsResult:
    heads: list[bridge.RevisionInfo]

    def as_dict(self) -> dict[str, Any]:
        return {"heads": [h.as_dict() for h in self.heads]}


def heads(settings: Settings) -> HeadsResult:
    project = open_project(settings)
    return HeadsResult(heads=[project.get(h) for h in project.heads()])


@dataclass
class CurrentResult:
    current: list[bridge.RevisionInfo | str]

    def as_dict(self) -> dict[str, Any]:
        return {"current": [c.as_dict() if isinstance(c, bridge.RevisionInfo) else
                            {"revision": c, "known": False} for c in self.current]}


def current(settings: Settings) -> CurrentResult:
    project = open_project(settings)
    with database(settings) as conn:
        revs = bridge.current_heads(project, conn)
    return CurrentResult(current=[project.get(r) if project.known(r) else r for r in revs])


def relative(path: str, root: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(root))
    except ValueError:
        return path
