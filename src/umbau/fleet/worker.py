"""One fleet worker: claim a target, give it umbau's full safe upgrade, record the outcome,
repeat until the run is finished or a stop is asked for.

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
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType

import psycopg

from umbau.errors import UmbauError
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
         owner: str | None = None) -> int:
    """Work on ``job.run_id`` until it is finished or ``stop`` is set.

    Returns the number of targets this worker upgraded (done or failed). ``tick`` is
    called after each target and while waiting. Raises
    :class:`~umbau.errors.DatabaseError` when the control database fails.
    """
    owner = owner or owner_id()
    try:
        with state.control(job.control_url) as conn, _heartbeat(job, owner):
            run = state.require_run(conn, job.run_id)
            state.join(conn, run)
            try:
                return _loop(conn, job, run, owner, stop, tick or (lambda: None))
            finally:
                state.release(conn, run.run_id, owner)
    except psycopg.Error as exc:
        raise state.translate(exc) from exc


def _loop(conn: psycopg.Connection, job: Job, run: state.Run, owner: str,
          stop: threading.Event, tick: Tick) -> int:
    handled = 0
    while not stop.is_set():
        target = None
        if state.stop_reason(conn, run) is None:
            target = state.claim(conn, run.run_id, owner, job.lease)
        if target is not None:
            upgrade_one(conn, job, run, target, owner)
            handled += 1
            tick()
            continue
        now, _ = state.settle(conn, run)
        if not now.pending and not now.running:
            break
        tick()
        stop.wait(job.poll)
    return handled


def upgrade_one(conn: psycopg.Connection, job: Job, run: state.Run, target: state.TargetRow,
                owner: str) -> None:
    """The full safe upgrade of one target (lock, timeouts, retries, history, backup
    policy, lint gate), its outcome recorded in the control database.

    A failure of the target is recorded, not raised: the fleet goes on.
    """
    from umbau.commands import migrate

    url = job.urls.get(target.name, target.url)
    settings = job.settings.with_overrides(database_url=url)
    try:
        result = migrate.upgrade(settings, run.target_revision, allow_unsafe=job.allow_unsafe,
                                 backup=job.backup, rollback=job.rollback)
    except UmbauError as exc:
        _failed(conn, run, target, owner, scrub(str(exc), url), exc.exit_code)
    except Exception as exc:  # a revision's own bug fails its target, not the fleet
        from umbau.postgres.errors import describe_error

        _failed(conn, run, target, owner, scrub(describe_error(exc), url), 1)
    else:
        state.finish(conn, run.run_id, target.name, owner, state="done",
                     before=",".join(result.before) or None,
                     after=",".join(result.after) or None, steps=len(result.steps))


def _failed(conn: psycopg.Connection, run: state.Run, target: state.TargetRow, owner: str,
            error: str, code: int) -> None:
    state.finish(conn, run.run_id, target.name, owner, state="failed", error=error,
                 exit_code=code)


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


def process_main(job: Job, index: int) -> None:
    """Entry point of a worker process started by ``--parallel`` (exit status 0 or 1)."""
    stop = threading.Event()
    # Ctrl-C reaches the whole process group: the parent alone decides, and passes a
    # stop on as SIGTERM, so that one Ctrl-C does not count as two here.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with stopping_on_signals(stop, (signal.SIGTERM,)):
        try:
            work(job, stop, owner=owner_id(index))
        except UmbauError as exc:
            print(f"umbau: error: fleet worker {index}: {exc}", file=sys.stderr)
            sys.exit(1)
