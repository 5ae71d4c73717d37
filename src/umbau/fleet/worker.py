"""One fleet worker: claim a target, give it umbau's full safe upgrade (or run the run's
backfill on it), record the outcome, repeat until the run is finished or a stop is asked
for.

A worker runs its targets one after another in its own process: Alembic's ``context``
and ``op`` are module-wide proxies, so two env.py runs cannot share a process.
``--parallel N`` therefore starts N worker processes (:func:`process_main`).
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import psycopg

from umbau.errors import UmbauError
from umbau.events import Event, EventHandler, emit
from umbau.fleet import state
from umbau.settings import Settings

Tick = Callable[[], None]


@dataclass(frozen=True)
class Job:
    """What a worker needs to work on a run; picklable, for worker processes.

    ``urls`` maps target names to URLs with their passwords (from this worker's own
    targets source); a target missing there is reached by the URL the run stored,
    without a password. ``lease`` and ``poll`` are seconds.
    """

    settings: Settings
    control_url: str
    run_id: str
    urls: Mapping[str, str] = field(default_factory=dict)
    allow_unsafe: bool | None = None
    backup: str | None = None
    rollback: str | None = None
    lease: float = 120.0
    poll: float = 0.25


def owner_id(index: int | None = None) -> str:
    """``host:pid`` (plus ``/index`` for a numbered worker): who holds a lease."""
    base = f"{socket.gethostname()}:{os.getpid()}"
    return base if index is None else f"{base}/{index}"


def work(job: Job, stop: threading.Event, tick: Tick | None = None,
         owner: str | None = None, on_event: EventHandler | None = None) -> int:
    """Work on ``job.run_id`` until it is finished or ``stop`` is set.

    Returns the number of targets this worker handled (done or failed). ``tick`` is
    called after each target and while waiting. ``on_event`` receives
    ``fleet_target_start``, ``fleet_target_done`` and ``fleet_target_failed`` for each
    of this worker's targets (see :class:`~umbau.events.Event`). Raises
    :class:`~umbau.errors.DatabaseError` when the control database fails.
    """
    owner = owner or owner_id()
    try:
        with state.control(job.control_url) as conn, _heartbeat(job, owner):
            run = state.require_run(conn, job.run_id)
            state.join(conn, run)
            try:
                return _loop(conn, job, run, owner, stop, tick or (lambda: None), on_event)
            finally:
                state.release(conn, run.run_id, owner)
    except psycopg.Error as exc:
        raise state.translate(exc) from exc


def _loop(conn: psycopg.Connection, job: Job, run: state.Run, owner: str,
          stop: threading.Event, tick: Tick, on_event: EventHandler | None) -> int:
    handled = 0
    action = _action(job, run)
    while not stop.is_set():
        target = state.claim(conn, run, owner, job.lease)
        if target is not None:
            _one(conn, job, run, target, owner, action, on_event)
            handled += 1
            tick()
            continue
        now, _ = state.settle(conn, run)
        if not now.pending and not now.running:
            break
        tick()
        stop.wait(job.poll)
    return handled


#: what a run does to one target: settings with its URL -> the outcome's columns
Action = Callable[[Settings], dict[str, Any]]


def _action(job: Job, run: state.Run) -> Action:
    """The run's task as a function of one target's settings (a backfill is imported
    once per worker, not once per target)."""
    if run.kind == "backfill":
        from umbau.backfill import load_backfill, run_backfill

        definition = load_backfill(run.task.subject, job.settings.root)

        def backfill(settings: Settings) -> dict[str, Any]:
            result = run_backfill(settings, definition, source=run.task.subject)
            if result.status != "done":
                raise UmbauError(f"the backfill is {result.status} here: `umbau backfill "
                                 f"resume {definition.name}` on it, then rerun the fleet run")
            return {"rows": result.rows}

        return backfill
    from umbau.commands import migrate

    def upgrade(settings: Settings) -> dict[str, Any]:
        result = migrate.upgrade(settings, run.task.subject, allow_unsafe=job.allow_unsafe,
                                 backup=job.backup, rollback=job.rollback)
        return {"before": ",".join(result.before) or None,
                "after": ",".join(result.after) or None, "steps": len(result.steps)}

    return upgrade


def upgrade_one(conn: psycopg.Connection, job: Job, run: state.Run, target: state.TargetRow,
                owner: str, on_event: EventHandler | None = None) -> None:
    """The run's task on one target: umbau's full safe upgrade (lock, timeouts, retries,
    history, backup policy, lint gate), or the run's backfill; the outcome recorded in
    the control database. A failure of the target is recorded, not raised."""
    _one(conn, job, run, target, owner, _action(job, run), on_event)


def _one(conn: psycopg.Connection, job: Job, run: state.Run, target: state.TargetRow,
         owner: str, action: Action, on_event: EventHandler | None) -> None:
    url = job.urls.get(target.name, target.url)
    settings = job.settings.with_overrides(database_url=url)
    about = {"target": target.name, "run_id": run.run_id, "kind": run.kind, "worker": owner}
    emit(on_event, Event("fleet_target_start", message=target.name, data=about))
    began = time.monotonic()
    try:
        outcome = action(settings)
    except UmbauError as exc:
        _failed(conn, run, target, owner, scrub(str(exc), url), exc.exit_code,
                time.monotonic() - began, about, on_event)
    except Exception as exc:  # a revision's (or transform's) own bug fails its target only
        from umbau.postgres.errors import describe_error

        _failed(conn, run, target, owner, scrub(describe_error(exc), url), 1,
                time.monotonic() - began, about, on_event)
    else:
        state.finish(conn, run.run_id, target.name, owner, state="done", **outcome)
        emit(on_event, Event("fleet_target_done", message=target.name,
                             revision=outcome.get("after"), duration=time.monotonic() - began,
                             data={**about, **outcome}))


def _failed(conn: psycopg.Connection, run: state.Run, target: state.TargetRow, owner: str,
            error: str, code: int, duration: float, about: dict[str, Any],
            on_event: EventHandler | None) -> None:
    state.finish(conn, run.run_id, target.name, owner, state="failed", error=error,
                 exit_code=code)
    emit(on_event, Event("fleet_target_failed", message=target.name, error=error,
                         duration=duration, data={**about, "exit_code": code}))


def scrub(text: str, url: str) -> str:
    """``text`` without the password of ``url`` (errors may quote a connection string)."""
    from sqlalchemy.engine import make_url

    try:
        password = make_url(url).password
    except Exception:
        return text
    return text.replace(str(password), "***") if password else text


@contextmanager
def _heartbeat(job: Job, owner: str) -> Iterator[None]:
    """Renew this owner's leases every third of a lease, on a connection of its own."""
    done = threading.Event()

    def beat() -> None:
        try:
            with state.control(job.control_url) as conn:
                while not done.wait(job.lease / 3):
                    state.renew(conn, job.run_id, owner, job.lease)
        except (UmbauError, psycopg.Error):
            pass  # the lease then expires and another worker takes the target over

    thread = threading.Thread(target=beat, name="umbau-fleet-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(timeout=5)


@contextmanager
def stopping_on_signals(stop: threading.Event,
                        signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT),
                        ) -> Iterator[None]:
    """SIGTERM and SIGINT set ``stop``: no new target starts, the running one finishes.

    A second signal interrupts the running target at once (its revision in progress is
    rolled back). Handlers are installed only in the main thread and restored afterwards.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    # the running target's own SIGTERM handling (a backup's) defers to this one
    handle.umbau_graceful = True  # type: ignore[attr-defined]
    previous = {sig: signal.signal(sig, handle) for sig in signals}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def process_main(job: Job, index: int, events: Any = None) -> None:
    """Entry point of a worker process started by ``--parallel`` (exit status 0 or 1).

    ``events``: a multiprocessing queue that receives this worker's per-target events,
    for the parent to pass on."""
    stop = threading.Event()
    # Ctrl-C reaches the whole process group: the parent alone decides, and passes a
    # stop on as SIGTERM, so that one Ctrl-C does not count as two here.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with stopping_on_signals(stop, (signal.SIGTERM,)):
        try:
            work(job, stop, owner=owner_id(index),
                 on_event=None if events is None else events.put)
        except UmbauError as exc:
            print(f"umbau: error: fleet worker {index}: {exc}", file=sys.stderr)
            sys.exit(1)
