"""``umbau fleet status`` and ``umbau fleet check``: every target's revision (or, for a
fleet backfill, the backfill's state), read from the target itself, next to what the
run recorded for it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg

from umbau.errors import EXIT_FLEET_FAILED, EXIT_GRAPH, EXIT_OK, EXIT_PENDING, UmbauError
from umbau.fleet import state
from umbau.fleet.config import FleetOptions
from umbau.fleet.control import control_database, embedded_folder
from umbau.fleet.targets import Target, display_url, resolve, select
from umbau.fleet.upgrade import source_targets
from umbau.fleet.worker import scrub
from umbau.settings import Settings

UNREACHABLE = "unreachable"


@dataclass
class TargetStatus:
    """One target: where its database is (``database``: up-to-date, pending,
    unknown-revision, multiple-heads or unreachable; for a backfill run the backfill's
    status there: done, running, paused, failed, cancelled, or not-started) and what the
    run recorded."""

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
        at a revision no script knows or several heads; 32 a target not reachable. For a
        backfill run: 0 when the backfill is done on every target, else 3 (32 when a
        target is not reachable)."""
        found = {t.database for t in self.targets}
        if UNREACHABLE in found:
            return EXIT_FLEET_FAILED
        if self.run is not None and self.run.kind == "backfill":
            return EXIT_OK if found <= {"done"} else EXIT_PENDING
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
    """Each target's current revision (or, for a backfill run, the backfill's status),
    read live, with its state in the run.

    The run is ``options.run_id`` or the newest, in the control database of
    :mod:`umbau.fleet.control` (none yet: no run, the targets still read); the targets
    are those of the targets source (``--tags`` applied), or else the run's. Raises
    :class:`~umbau.errors.UsageError` when there are neither.
    """
    everything = _source_targets(settings, options)
    run, rows = None, []
    with control_database(settings, options.control_url, everything, create=False) as found:
        if found.exists:
            with state.control(found.url) as conn:
                try:
                    run = state.load_run(conn, options.run_id)
                    if options.run_id and run is None:
                        state.require_run(conn, options.run_id)
                    rows = state.targets(conn, run.run_id) if run else []
                except psycopg.Error as exc:
                    raise state.translate(exc) from exc
        elif options.run_id:
            state.require_run_missing(options.run_id)
    targets = select(everything, options.tags) if everything and options.tags else everything
    if targets is None:
        targets = [Target(r.name, r.url, tuple(r.tags)) for r in rows]
    recorded = {r.name: r for r in rows}
    result = FleetStatus(run)
    backfill = _backfill_name(settings, run)
    for target in targets:
        result.targets.append(_one(settings, target, recorded.get(target.name), backfill))
    return result


def check(settings: Settings, options: FleetOptions) -> FleetStatus:
    """Like :func:`status`; the CLI exits with ``result.exit_code``."""
    return status(settings, options)


def _source_targets(settings: Settings, options: FleetOptions) -> list[Target] | None:
    if not options.source.given:
        if not (options.control_url or options.run_id
                or embedded_folder(settings).exists()):
            resolve(options.source)  # raises the "no fleet targets" UsageError
        return None
    return source_targets(options)


def _backfill_name(settings: Settings, run: state.Run | None) -> str | None:
    """The name of a backfill run's backfill (its spec imported here), else None."""
    if run is None or run.kind != "backfill" or not run.backfill:
        return None
    from umbau.backfill import load_backfill

    return load_backfill(run.backfill, settings.root).name


def _one(settings: Settings, target: Target, row: state.TargetRow | None,
         backfill: str | None) -> TargetStatus:
    from umbau.commands.status import status as database_status

    shown = TargetStatus(target.name, display_url(target.url), UNREACHABLE,
                         run_state=row.state if row else None,
                         duration_s=row.duration if row else None,
                         error=row.error if row else None)
    if backfill is not None:
        return _backfill_one(settings, target, backfill, shown)
    try:
        found = database_status(settings.with_overrides(database_url=target.url))
    except UmbauError as exc:
        shown.error = scrub(str(exc), target.url)
        return shown
    shown.database = found.state
    shown.current = found.current
    shown.pending = len(found.pending)
    return shown


def _backfill_one(settings: Settings, target: Target, name: str,
                  shown: TargetStatus) -> TargetStatus:
    """The backfill's status in the target (``not-started`` when it has no state there)."""
    from umbau.backfill import backfill_status
    from umbau.errors import BackfillError

    try:
        found = backfill_status(settings.with_overrides(database_url=target.url), name)
    except BackfillError:
        shown.database = "not-started"
        return shown
    except UmbauError as exc:
        shown.error = scrub(str(exc), target.url)
        return shown
    shown.database = found[0].status
    shown.pending = max((found[0].rows_total or 0) - found[0].rows_done, 0)
    return shown
