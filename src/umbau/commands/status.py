"""``umbau status`` and ``umbau check``: where the database stands against the scripts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from umbau import alembic_bridge as bridge
from umbau.commands._common import database, open_project
from umbau.errors import EXIT_GRAPH, EXIT_OK, EXIT_PENDING, UnknownRevision, UsageError
from umbau.postgres import catalog, history
from umbau.settings import Settings

UP_TO_DATE = "up-to-date"
PENDING = "pending"
MULTIPLE_HEADS = "multiple-heads"
UNKNOWN_REVISION = "unknown-revision"
UNVERSIONED = "unversioned"


@dataclass
class StatusResult:
    current: tuple[str, ...]
    heads: tuple[str, ...]
    pending: list[bridge.Step] = field(default_factory=list)
    unknown: tuple[str, ...] = ()
    last_run: history.HistoryRow | None = None
    messages: dict[str, str] = field(default_factory=dict)
    unversioned: tuple[str, ...] = ()  # tables of a database without a version table
    phases: dict[str, str] = field(default_factory=dict)  # pending revision -> pre/post
    phase: str | None = None  # `check --phase pre`: post-deploy revisions may be pending

    @property
    def pre_phase_done(self) -> bool:
        """Only post-deploy revisions are pending (the pre-deploy phase is complete)."""
        return all(self.phases.get(s.revision) == "post" for s in self.pending)

    @property
    def state(self) -> str:
        if self.unknown:
            return UNKNOWN_REVISION
        if len(self.heads) > 1:
            return MULTIPLE_HEADS
        if self.unversioned:
            return UNVERSIONED
        if self.pending:
            return PENDING
        return UP_TO_DATE

    @property
    def exit_code(self) -> int:
        """0 at the single head, 3 with revisions pending, 4 on a graph problem.

        With ``phase="pre"``: 0 also when only post-deploy revisions are pending."""
        if self.state == PENDING and self.phase == "pre" and self.pre_phase_done:
            return EXIT_OK
        return {UP_TO_DATE: EXIT_OK, PENDING: EXIT_PENDING}.get(self.state, EXIT_GRAPH)

    def summary(self) -> str:
        if self.state == UNKNOWN_REVISION:
            return (f"the database is at {', '.join(self.unknown)}, which no revision file "
                    "knows: run `umbau doctor`")
        if self.state == MULTIPLE_HEADS:
            return (f"the scripts have {len(self.heads)} heads: merge them with "
                    f"`umbau merge -m \"merge heads\" {' '.join(self.heads)}`")
        if self.state == UNVERSIONED:
            shown = ", ".join(self.unversioned[:3]) + (", ..." if len(self.unversioned) > 3
                                                        else "")
            return (f"the database has {len(self.unversioned)} table(s) ({shown}) but no "
                    "version table: its schema was not made by these revisions, or its "
                    "alembic_version was lost; run `umbau baseline` to find its revision "
                    "(upgrade would fail on \"already exists\")")
        if self.partial is not None:
            return (f"revision {self.partial.revision} was partially applied on "
                    f"{self.partial.finished_at:%Y-%m-%d %H:%M} (it committed part of its "
                    "work, then failed): finish it by hand, see `umbau doctor`")
        if self.state == PENDING and self.pre_phase_done:
            return (f"{len(self.pending)} post-deploy revision(s) pending: run `umbau upgrade "
                    "--phase post` once the old application version is gone")
        if self.state == PENDING:
            return f"{len(self.pending)} revision(s) pending: run `umbau upgrade`"
        return "the database is at the head"

    @property
    def partial(self) -> history.HistoryRow | None:
        """The last run, when it left a revision partially applied."""
        run = self.last_run
        return run if run is not None and run.outcome == "partial" else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "partial": self.partial.revision if self.partial else None,
            "summary": self.summary(),
            "current": list(self.current),
            "heads": list(self.heads),
            "unknown": list(self.unknown),
            "unversioned_tables": list(self.unversioned),
            "pending": [
                {"revision": s.revision, "down_revision": s.down_revision, "message": s.message,
                 "phase": self.phases.get(s.revision, "pre")}
                for s in self.pending
            ],
            "last_run": self.last_run.as_dict() if self.last_run else None,
            "phase": self.phase,
        }


def status(settings: Settings) -> StatusResult:
    """Current revision(s), the head(s), the pending revisions in order, the last run."""
    project = open_project(settings)
    heads = project.heads()
    with database(settings) as conn:
        current = bridge.current_heads(project, conn)
        rows = history.read(conn, settings.history_table, limit=1)
        tables = () if current else tuple(catalog.user_tables(conn, settings.history_table))
        conn.rollback()
    result = StatusResult(current=current, heads=heads, last_run=rows[0] if rows else None,
                          unversioned=tables)
    result.unknown = tuple(r for r in current if not project.known(r))
    for rev in (*current, *heads):
        if project.known(rev):
            result.messages[rev] = project.get(rev).message
    if not result.unknown:
        try:
            result.pending = project.upgrade_steps(current, "heads")
        except UnknownRevision:
            result.unknown = current
    result.phases = {s.revision: project.phase(s.revision) for s in result.pending}
    return result


def check(settings: Settings, phase: str | None = None) -> StatusResult:
    """Like status; the CLI exits with ``result.exit_code``. ``phase="pre"``: the
    readiness probe between the phases (0 when only post-deploy revisions are pending)."""
    if phase not in (None, "pre"):
        raise UsageError(f"check --phase {phase}: only pre is meaningful (plain check covers "
                         "both phases)")
    result = status(settings)
    result.phase = phase
    return result
