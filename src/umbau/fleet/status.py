"""``umbau fleet status`` and ``umbau fleet check``: every target's revision, read from
the target itself, next to what the last run recorded for it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg

from umbau.errors import EXIT_FLEET_FAILED, EXIT_GRAPH, EXIT_OK, EXIT_PENDING, UmbauError
from umbau.fleet import state
from umbau.fleet.config import FleetOptions
from umbau.fleet.targets import Target, display_url, resolve
from umbau.fleet.upgrade import control_database, fleet_targets
from umbau.fleet.worker import scrub
from umbau.settings import Settings

UNREACHABLE = "unreachable"


@dataclass
class TargetStatus:
    """One target: where its database is (``database``: up-to-date, pending,
    unknown-revision, multiple-heads or unreachable) and what the run recorded."""

    name: str
    url: str
    database: str
    current: tuple[str, ...] = ()
    pending: int = 0
    run_state: str | None = None
    duration_s: float | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.url, "database": self.database,
                "current": list(self.current), "pending": self.pending,
                "state": self.run_state, "duration_s": self.duration_s, "error": self.error}


@dataclass
class FleetStatus:
    """Every target's status; ``run`` is the run the states come from (None: no run)."""

    run: state.Run | None
    targets: list[TargetStatus] = field(default_factory=list)

    def totals(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for target in self.targets:
            out[target.database] = out.get(target.database, 0) + 1
        return out

    @property
    def exit_code(self) -> int:
        """0 when every target is at the head; 3 revisions pending somewhere; 4 a target
        at a revision no script knows or several heads; 32 a target not reachable."""
        found = {t.database for t in self.targets}
        if UNREACHABLE in found:
            return EXIT_FLEET_FAILED
        if found & {"unknown-revision", "multiple-heads"}:
            return EXIT_GRAPH
        return EXIT_PENDING if "pending" in found else EXIT_OK

    def summary(self) -> str:
        parts = ", ".join(f"{n} {k}" for k, n in sorted(self.totals().items()))
        return f"{len(self.targets)} target(s): {parts}"

    def as_dict(self) -> dict[str, Any]:
        return {"run": self.run.as_dict() if self.run else None, "totals": self.totals(),
                "exit_code": self.exit_code, "summary": self.summary(),
                "targets": [t.as_dict() for t in self.targets]}


def status(settings: Settings, options: FleetOptions) -> FleetStatus:
    """Each target's current revision (read live) with its state in the run.

    The run is ``options.run_id`` or the newest; the targets are those of the targets
    source, or else the run's. Raises :class:`~umbau.errors.UsageError` when there are
    neither.
    """
    targets = _source_targets(options)
    control_url = control_database(options, targets)
    with state.control(control_url) as conn:
        try:
            run = state.load_run(conn, options.run_id)
            if options.run_id and run is None:
                state.require_run(conn, options.run_id)
            rows = state.targets(conn, run.run_id) if run else []
        except psycopg.Error as exc:
            raise state.translate(exc) from exc
    if targets is None:
        targets = [Target(r.name, r.url, tuple(r.tags)) for r in rows]
    recorded = {r.name: r for r in rows}
    result = FleetStatus(run)
    for target in targets:
        result.targets.append(_one(settings, target, recorded.get(target.name)))
    return result


def check(settings: Settings, options: FleetOptions) -> FleetStatus:
    """Like :func:`status`; the CLI exits with ``result.exit_code``."""
    return status(settings, options)


def _source_targets(options: FleetOptions) -> list[Target] | None:
    if not options.source.given:
        if not options.control_url:
            resolve(options.source)  # raises the "no fleet targets" UsageError
        return None
    return fleet_targets(options)


def _one(settings: Settings, target: Target, row: state.TargetRow | None) -> TargetStatus:
    from umbau.commands.status import status as database_status

    shown = TargetStatus(target.name, display_url(target.url), UNREACHABLE,
                         run_state=row.state if row else None,
                         duration_s=row.duration if row else None,
                         error=row.error if row else None)
    try:
        found = database_status(settings.with_overrides(database_url=target.url))
    except UmbauError as exc:
        shown.error = scrub(str(exc), target.url)
        return shown
    shown.database = found.state
    shown.current = found.current
    shown.pending = len(found.pending)
    return shown
