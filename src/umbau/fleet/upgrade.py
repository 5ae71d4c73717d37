"""``umbau fleet upgrade``: the same safe upgrade on every target of a fleet.

The run and its targets live in the control database (:mod:`umbau.fleet.state`);
this process joins the run with ``parallel`` worker processes
(:mod:`umbau.fleet.worker`), and any number of other processes, on this machine or
others, may join the same run with ``--run ID --worker``. This process reports
progress from the control database, so it sees every worker's targets.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import secrets
import signal
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import psycopg

from umbau.errors import FleetBusy, FleetFailed, FleetStopped, UmbauError, UsageError
from umbau.events import Event, EventHandler, emit
from umbau.fleet import state
from umbau.fleet.config import FleetOptions, canary_count
from umbau.fleet.control import EMBEDDED, control_database
from umbau.fleet.state import Task
from umbau.fleet.targets import Target, resolve, select
from umbau.fleet.worker import Job, owner_id, process_main, stopping_on_signals, work
from umbau.settings import Settings


@dataclass
class FleetResult:
    """The outcome of a fleet run as this process saw it at the end."""

    run: state.Run
    targets: list[state.TargetRow]
    counts: state.Counts
    stopped: bool = False
    created: bool = False
    duration_s: float = 0.0

    @property
    def exit_code(self) -> int:
        error = self.error()
        return 0 if error is None else error.exit_code

    def error(self) -> UmbauError | None:
        """:class:`FleetStopped` or :class:`FleetFailed` when the run is not a success."""
        rerun = f"{self.run.task.command} --run {self.run.run_id}"
        if self.counts.pending or self.counts.running:
            return FleetStopped(f"stopped: {self.counts.pending + self.counts.running} of "
                                f"{self.counts.total} target(s) not upgraded; resume with "
                                f"`{rerun}` (and this run's --targets/--control-url options)")
        if not (self.counts.failed or self.counts.skipped):
            return None
        failed = [t for t in self.targets if t.state == "failed"]
        first = f" (first: {failed[0].name}: {failed[0].error})" if failed else ""
        skipped = f", {self.counts.skipped} not started" if self.counts.skipped else ""
        return FleetFailed(f"{self.counts.failed} of {self.counts.total} target(s) failed"
                           f"{skipped}{first}: see `umbau fleet status --run "
                           f"{self.run.run_id}`, fix, then `{rerun} --retry-failed`")

    def as_dict(self) -> dict[str, Any]:
        return {"run": self.run.as_dict(), "counts": self.counts.as_dict(),
                "stopped": self.stopped, "created": self.created,
                "duration_s": round(self.duration_s, 3), "exit_code": self.exit_code,
                "targets": [t.as_dict() for t in self.targets]}


def upgrade(settings: Settings, options: FleetOptions, *, on_event: EventHandler | None = None,
            stop: threading.Event | None = None) -> FleetResult:
    """Upgrade every target of the fleet to ``options.target`` (default ``head``).

    A new run is created (or, with ``options.run_id``, joined or resumed) in the control
    database (:mod:`umbau.fleet.control`); SIGTERM and SIGINT (in the main thread), or
    ``stop``, end it early: no new target starts, running targets finish. ``on_event``
    receives ``plan``, ``fleet_progress`` and ``fleet_target`` events (the whole run, read
    from the control database), and ``fleet_target_start``/``fleet_target_done``/
    ``fleet_target_failed`` for each target this process's workers handle (see
    :class:`~umbau.events.Event`). Returns the :class:`FleetResult`; its ``error()`` says
    whether the CLI should fail. Raises :class:`~umbau.errors.FleetBusy` when another run
    is in progress, :class:`~umbau.errors.UsageError` on bad targets or options.
    """
    return _run(settings, options, Task("upgrade", options.target), on_event, stop,
                lambda: _check_target(settings, options.target))


def backfill(settings: Settings, spec: str, options: FleetOptions, *,
             on_event: EventHandler | None = None,
             stop: threading.Event | None = None) -> FleetResult:
    """Run the backfill ``spec`` (``module:attribute``, as for ``umbau backfill run``) on
    every target of the fleet, the way :func:`upgrade` upgrades them: canary first,
    failure budget, leases, resume after a kill, any number of workers.

    On each target the backfill runs with one worker (:func:`umbau.backfill.run_backfill`:
    batched, resumable from its checkpoint in the target, verified); a target whose
    backfill fails, is paused or cancelled there, or whose table is missing, is a failed
    target. ``options.target`` is ignored. Raises :class:`~umbau.errors.UsageError`
    for a spec that does not import (before any change), and what :func:`upgrade` raises.
    """
    def check() -> None:
        from umbau.backfill import load_backfill

        load_backfill(spec, settings.root)

    return _run(settings, options, Task("backfill", spec), on_event, stop, check)


def _run(settings: Settings, options: FleetOptions, task: Task,
         on_event: EventHandler | None, stop: threading.Event | None,
         check: Callable[[], None]) -> FleetResult:
    """Create, join or resume a run of ``task`` and work on it (see :func:`upgrade`)."""
    stop = stop or threading.Event()
    started = time.monotonic()
    everything = source_targets(options)
    targets = select(everything, options.tags) if everything and options.tags else everything
    check()  # bad input is refused before any change
    canaries = _canaries(options, targets) if targets else []
    try:
        with control_database(settings, options.control_url, everything, create=True,
                              worker=options.worker, on_event=on_event) as control, \
                state.control(control.url) as conn, stopping_on_signals(stop):
            state.ensure_tables(conn)
            run, created = _open_run(conn, options, task, targets, canaries)
            job = Job(settings, control.url, run.run_id, {t.name: t.url for t in targets or ()},
                      options.allow_unsafe, options.backup, options.rollback, options.lease)
            progress = _Progress(conn, run, on_event)
            _execute(job, options, stop, progress)
            now, _ = state.settle(conn, run)
            run = state.require_run(conn, run.run_id)
            return FleetResult(run, state.targets(conn, run.run_id), now, stop.is_set(),
                               created, time.monotonic() - started)
    except psycopg.Error as exc:
        raise state.translate(exc) from exc


def source_targets(options: FleetOptions) -> list[Target] | None:
    """Every target of the source, before ``--tags``; None when a run is joined (or a
    status read) without a source."""
    if not options.source.given and options.run_id:
        return None
    if options.source.query is not None:
        if not options.control_url or options.control_url.strip().lower() == EMBEDDED:
            raise UsageError("--targets-query runs against the control database: pass "
                             "--control-url or set control_url in [tool.umbau.fleet]")
        with state.control(options.control_url) as conn:
            try:
                return resolve(options.source, lambda sql: conn.execute(sql).fetchall())
            except psycopg.Error as exc:
                raise UsageError(f"the targets query failed: {exc}".splitlines()[0]
                                 + ": fix --targets-query") from exc
    return resolve(options.source)


def fleet_targets(options: FleetOptions) -> list[Target] | None:
    """The targets of the source (tags applied); None when a run is joined without any."""
    found = source_targets(options)
    return select(found, options.tags) if found and options.tags else found


def _canaries(options: FleetOptions, targets: Sequence[Target]) -> list[str]:
    count = canary_count(options.canary)
    if count is not None:
        return [t.name for t in targets[:count]]
    names = {t.name for t in targets}
    missing = [c for c in options.canary if c not in names]
    if missing:
        raise UsageError(f"--canary names no target {', '.join(missing)}: give target names "
                         "or a number")
    return list(options.canary)


def _open_run(conn: psycopg.Connection, options: FleetOptions, task: state.Task,
              targets: Sequence[Target] | None, canaries: Sequence[str],
              ) -> tuple[state.Run, bool]:
    """The run to work on, joined by this session: (run, created here)."""
    with state.creating(conn):
        run = state.load_run(conn, options.run_id) if options.run_id else None
        if run is None:
            run = _create(conn, options, task, targets, canaries)
            state.join(conn, run)
            return run, True
    if run.kind != task.kind:
        raise UsageError(f"run {run.run_id} is a fleet {run.kind} of {run.task.subject}: "
                         f"join it with `{run.task.command} --run {run.run_id}`, or name "
                         "another run")
    if task.kind == "upgrade" and task.subject not in ("head", run.target_revision):
        raise UsageError(f"run {run.run_id} upgrades to {run.target_revision}, not "
                         f"{task.subject}: drop the revision or start a new run")
    if task.kind == "backfill" and task.subject != run.backfill:
        raise UsageError(f"run {run.run_id} runs the backfill {run.backfill}, not "
                         f"{task.subject}: name that backfill or start a new run")
    state.reopen(conn, run.run_id, retry_failed=options.retry_failed)
    state.join(conn, run)
    return state.require_run(conn, run.run_id), False


def _create(conn: psycopg.Connection, options: FleetOptions, task: state.Task,
            targets: Sequence[Target] | None, canaries: Sequence[str]) -> state.Run:
    if targets is None:
        raise UsageError(f"no fleet run {options.run_id!r} yet, and no targets to start it "
                         "with: pass --targets, --targets-query or --url-template")
    if options.run_id is None:
        busy = state.active_run(conn)
        if busy:
            other = state.require_run(conn, busy)
            raise FleetBusy(f"fleet run {busy} is in progress: join it with `"
                            f"{other.task.command} --run {busy} --worker`, or wait for it to "
                            "finish", busy)
    run_id = options.run_id or time.strftime("%Y%m%d-%H%M%S-", time.gmtime()) + secrets.token_hex(2)
    limit = state.budget(options.max_failures, options.max_failure_rate, len(targets))
    return state.create_run(conn, run_id, task, targets, canaries, limit, owner_id())


def _check_target(settings: Settings, target: str) -> None:
    """An unknown target revision is refused before any target is touched."""
    from umbau.commands._common import open_project

    open_project(settings).resolve_target(target)


def _execute(job: Job, options: FleetOptions, stop: threading.Event,
             progress: _Progress) -> None:
    progress.tick()  # the plan (how many targets) before the first target starts
    if options.parallel <= 1:
        work(job, stop, progress.tick, on_event=progress.on_event)
        return
    _run_processes(job, options.parallel, stop, progress)
    if not stop.is_set():  # a worker process died: finish its targets here
        work(job, stop, progress.tick, on_event=progress.on_event)


def _run_processes(job: Job, count: int, stop: threading.Event, progress: _Progress) -> None:
    """``count`` worker processes; a stop is passed on to them as SIGTERM. Their
    per-target events come back through a queue (only when someone listens)."""
    context = multiprocessing.get_context("spawn")  # a fork would share our connections
    events = context.Queue() if progress.on_event is not None else None
    processes = [context.Process(target=process_main, args=(job, i, events), daemon=False,
                                 name=f"umbau-fleet-worker-{i}") for i in range(count)]
    with ExitStack() as cleanup:
        for process in processes:
            process.start()
            cleanup.callback(process.join)
        told = False
        while any(p.is_alive() for p in processes):
            if stop.is_set() and not told:
                told = True
                for process in processes:
                    if process.pid and process.is_alive():
                        os.kill(process.pid, signal.SIGTERM)
            _drain(events, progress.on_event, wait=0.5)
            progress.tick()
        _drain(events, progress.on_event, wait=0.0)
        progress.tick()


def _drain(events: Any, on_event: EventHandler | None, wait: float) -> None:
    """Pass the worker processes' events on; waits up to ``wait`` seconds for the first."""
    if events is None:
        time.sleep(wait)
        return
    try:
        event = events.get(timeout=wait) if wait > 0 else events.get_nowait()
    except queue.Empty:
        return
    while True:
        emit(on_event, event)
        try:
            event = events.get_nowait()
        except queue.Empty:
            return


@dataclass
class _Progress:
    """Events from the control database: each finished target, totals and an ETA."""

    conn: psycopg.Connection
    run: state.Run
    on_event: EventHandler | None
    seen: set[str] = field(default_factory=set)
    started: float = field(default_factory=time.monotonic)
    first_done: int | None = None
    planned: bool = False

    def tick(self) -> None:
        if self.on_event is None:
            return
        rows = state.targets(self.conn, self.run.run_id)
        if not self.planned:
            self.planned = True
            emit(self.on_event, Event("plan", total=len(rows)))
        finished = [r for r in rows if r.state in ("done", "failed", "skipped")]
        if self.first_done is None:
            self.first_done = len(finished)
        for row in finished:
            if row.name not in self.seen:
                self.seen.add(row.name)
                emit(self.on_event, self._target_event(row, rows))
        running = [r.name for r in rows if r.state == "running"]
        emit(self.on_event, Event("fleet_progress", total=len(rows), done=len(finished),
                                  unit="targets",
                                  message=f"{self._tally(rows)}; running: "
                                          f"{', '.join(running[:4]) or '-'}"))

    def _target_event(self, row: state.TargetRow, rows: list[state.TargetRow]) -> Event:
        if row.state == "done":
            what = f"done → {row.after_revision or 'base'} ({row.steps} step(s))"
        else:
            what = f"{row.state}: {row.error}"
        return Event("fleet_target", revision=row.after_revision, message=f"{row.name}: {what}"
                     f"  [{self._tally(rows)}]", duration=row.duration,
                     error=row.error if row.state == "failed" else None)

    def _tally(self, rows: list[state.TargetRow]) -> str:
        done = sum(r.state == "done" for r in rows)
        failed = sum(r.state in ("failed", "skipped") for r in rows)
        remaining = len(rows) - done - failed
        return f"{done} done, {failed} failed/skipped, {remaining} remaining, ETA " \
               f"{self._eta(len(rows) - remaining, remaining)}"

    def _eta(self, finished: int, remaining: int) -> str:
        base = self.first_done or 0
        rate = (finished - base) / max(time.monotonic() - self.started, 1e-6)
        if remaining == 0:
            return "0s"
        return "?" if rate <= 0 else f"{remaining / rate:.0f}s"
