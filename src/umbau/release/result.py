"""What the release functions return: each with ``as_dict()`` for ``--format json``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from umbau.release.state import ReleaseRow, masked


@dataclass
class StepReport:
    """One step of a run as it ended: outcome (``done``, ``failed``, ``undone``,
    ``undo_failed``, ``skipped``, ``planned`` in a dry run, ``already done`` on a
    resumed run), seconds, error line, detail (backup path, revision before, …)."""

    index: int
    name: str
    kind: str
    outcome: str
    seconds: float | None = None
    error: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "step": self.name, "kind": self.kind,
                "outcome": self.outcome,
                "seconds": None if self.seconds is None else round(self.seconds, 3),
                "error": masked(self.error), "detail": masked(self.detail)}


@dataclass
class ReleaseResult:
    """A release run: ``outcome`` is ``released``, ``already released``, ``dry run``,
    ``rolled back`` or ``rollback failed`` (the last two are raised as errors by
    :func:`umbau.release.run_release`; the error carries this result as ``.result``)."""

    version: str
    run_id: str | None
    outcome: str
    rollback_method: str | None = None
    resumed: bool = False
    steps: list[StepReport] = field(default_factory=list)
    seconds: float = 0.0
    failed_step: str | None = None
    error: str | None = None
    left: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"version": self.version, "run_id": self.run_id, "outcome": self.outcome,
                "rollback_method": self.rollback_method, "resumed": self.resumed,
                "seconds": round(self.seconds, 3), "failed_step": self.failed_step,
                "error": masked(self.error), "left": masked(self.left),
                "warnings": masked(self.warnings),
                "steps": [s.as_dict() for s in self.steps]}


def run_state(rows: list[ReleaseRow]) -> str:
    """What a run's rows (oldest first) say: ``none`` (no rows), ``released``, ``rolled
    back``, ``rollback failed``, ``rolling back`` (a rollback that was interrupted),
    ``rewound by a restore`` (the database was restored from a backup taken during the
    run: its record is not to be resumed),
    ``running`` (a step in progress, or its process died) or ``interrupted``."""
    if not rows:
        return "none"
    latest: dict[int, ReleaseRow] = {}
    for row in rows:
        latest[row.step_index] = row
    if any(r.detail.get("rewound_by_restore") for r in rows):
        return "rewound by a restore"
    outcomes = {r.outcome for r in latest.values()}
    if "undo_failed" in outcomes:
        return "rollback failed"
    if "failed" in outcomes:
        unfinished = "done" in outcomes or any(
            r.outcome == "failed" and not r.detail.get("undo_done") for r in latest.values())
        return "rolling back" if unfinished else "rolled back"
    if "running" in outcomes:
        return "running"
    total = rows[0].detail.get("steps_total")
    if outcomes == {"done"} and total is not None and len(latest) >= int(total):
        return "released"
    return "interrupted"


@dataclass
class ReleaseStatus:
    """The newest run of each version, newest first; ``steps`` lists their rows in the
    dashboard's shape (version, step, outcome, finished_at)."""

    runs: list[dict[str, Any]] = field(default_factory=list)
    steps: list[ReleaseRow] = field(default_factory=list)
    lock_holder: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"runs": self.runs, "lock_holder": self.lock_holder,
                "steps": [{"version": r.version, "step": r.step_name, "kind": r.kind,
                           "outcome": r.outcome, "started_at": r.started_at.isoformat(),
                           "finished_at": r.finished_at.isoformat() if r.finished_at else None,
                           "error": masked(r.error), "host": r.host, "run_id": r.run_id}
                          for r in self.steps]}


@dataclass
class ReleaseHistory:
    """Rows of ``umbau_releases``, newest first."""

    rows: list[ReleaseRow] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"rows": [r.as_dict() for r in self.rows]}


@dataclass
class Checklist:
    """A plan as a Markdown checklist, with the values filled in."""

    version: str
    markdown: str
    plan: dict[str, Any]
    rollback_method: str
    estimates: dict[str, float | None] = field(default_factory=dict)
    backup_dir: str | None = None
    pending: list[str] = field(default_factory=list)
    current: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"version": self.version, "rollback_method": self.rollback_method,
                "warnings": self.warnings,
                "backup_dir": self.backup_dir, "current": self.current,
                "pending": self.pending, "estimates": self.estimates,
                "plan": masked(self.plan), "markdown": masked(self.markdown)}
