"""Worker processes on this machine, and how they stop.

``--workers N`` forks N workers (they inherit the backfill, a Python transform
included); the parent only reports progress from the state table. Stopping:

* SIGINT or SIGTERM to the parent (Ctrl-C, ``timeout``, systemd, Kubernetes): the
  parent sets a shared stop event, the workers stop after their current batch (it
  commits with its checkpoint), release their chunks and exit; the parent waits up to
  :data:`STOP_GRACE` seconds, kills any worker still busy (its open batch rolls back)
  and reports how far the backfill got. A second signal stops at once.
* Workers ignore SIGINT: Ctrl-C on a terminal reaches the whole process group, and
  the parent alone decides (no KeyboardInterrupt traceback per worker).
* The parent killed with kill -9: each worker notices (``PR_SET_PDEATHSIG`` on Linux,
  and its parent pid changing everywhere) and stops after its current batch, like
  on SIGTERM. Finishing the batch rather than dying at once loses nothing: the batch
  commits with its checkpoint, and a rerun continues from there.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import psycopg

from umbau.backfill import state
from umbau.backfill.batch import Changer
from umbau.backfill.options import Options
from umbau.backfill.worker import Worker
from umbau.errors import BackfillFailed, DatabaseError, UmbauError
from umbau.postgres.driver import connect_raw
from umbau.settings import Settings

PROGRESS_INTERVAL = 0.5
# Seconds the parent waits for workers to finish their batch after a stop signal.
STOP_GRACE = 5.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_PR_SET_PDEATHSIG = 1

Report = Callable[[int, int, int, "str | None"], None]



@contextmanager
def _handling(handler: Callable[[int, FrameType | None], None],
              enabled: bool) -> Iterator[None]:
    """``handler`` for :data:`STOP_SIGNALS` while inside, the previous handlers restored
    afterwards; nothing when not ``enabled`` or outside the main thread (Python runs
    signal handlers there only)."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for number, old in previous.items():
            signal.signal(number, old)

class StopRequest:
    """The first SIGINT/SIGTERM asks the workers to stop after their current batch; a
    second one raises KeyboardInterrupt (stop now: the open batches roll back)."""

    def __init__(self, event: Any | None = None) -> None:
        self.event = event if event is not None else threading.Event()
        self.signal: int | None = None

    def is_set(self) -> bool:
        return bool(self.event.is_set())

    @contextmanager
    def on_signals(self, enabled: bool) -> Iterator[StopRequest]:
        """Catch the stop signals while inside (main thread only; else unchanged)."""
        with _handling(self._handle, enabled):
            yield self

    def _handle(self, number: int, frame: FrameType | None) -> None:
        if self.signal is not None:
            raise KeyboardInterrupt
        self.signal = number
        self.event.set()


@dataclass
class Outcome:
    """How the worker processes ended: the stop request (its ``signal`` set when one
    stopped the run), how many were killed after :data:`STOP_GRACE`, and the errors
    that ended workers early (exit code, one line), for the parent to report."""

    stop: StopRequest
    killed: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    rows: int | None = None  # rows this run's workers changed (None: not known)


class StopNow:
    """SIGINT/SIGTERM while no batch runs (the checks, the count, planning the chunks,
    the final verification): stop at once, as SIGINT always did, by raising
    KeyboardInterrupt in the main thread (psycopg then cancels the statement in
    flight). ``signal`` says which one came, so that SIGTERM is reported (exit code
    143) instead of ending the process silently. Batch phases install
    :class:`StopRequest` over it."""

    def __init__(self) -> None:
        self.signal: int | None = None

    @contextmanager
    def on_signals(self, enabled: bool) -> Iterator[StopNow]:
        with _handling(self._handle, enabled):
            yield self

    def _handle(self, number: int, frame: FrameType | None) -> None:
        self.signal = number
        raise KeyboardInterrupt


def run_processes(settings: Settings, changer: Changer, options: Options, workers: int,
                  report: Report, handle_signals: bool) -> Outcome:
    """Run ``workers`` worker processes to the end or until stopped; see :class:`Outcome`."""
    ctx = multiprocessing.get_context("fork")
    outcome = Outcome(StopRequest(ctx.Event()))
    errors, rows = ctx.SimpleQueue(), ctx.SimpleQueue()
    procs = [ctx.Process(target=_child, args=(settings, changer, options, os.getpid(),
                                              outcome.stop.event, errors, rows), daemon=True)
             for _ in range(workers)]
    with outcome.stop.on_signals(handle_signals):
        for proc in procs:
            proc.start()
        try:
            _watch(settings, changer.backfill.name, procs, outcome.stop, report)
        finally:
            outcome.stop.event.set()  # also on KeyboardInterrupt
            outcome.killed = _reap(procs)
    while not errors.empty():
        outcome.errors.append(errors.get())
    outcome.rows = 0
    while not rows.empty():
        outcome.rows += rows.get()
    return outcome


def _watch(settings: Settings, name: str, procs: list[Any], stop: StopRequest,
           report: Report) -> None:
    deadline: float | None = None
    progress = _Progress(settings, name, report)
    while any(p.is_alive() for p in procs):
        progress.report()
        if stop.is_set():
            deadline = deadline or time.monotonic() + STOP_GRACE
            if time.monotonic() > deadline:
                break
        time.sleep(PROGRESS_INTERVAL / 5 if stop.is_set() else PROGRESS_INTERVAL)
    progress.report()
    progress.close()


class _Progress:
    """The parent's progress reads. Only the workers change rows: a lost progress
    connection (a terminated session, a server restart) must not stop them, so it is
    opened again at the next report, and a report that fails is skipped."""

    def __init__(self, settings: Settings, name: str, report: Report) -> None:
        self.url = settings.require_database_url()
        self.name = name
        self.on_report = report
        self.session: ExitStack | None = None
        self.conn: psycopg.Connection | None = None

    def report(self) -> None:
        try:
            if self.conn is None or self.conn.closed or self.conn.broken:
                self.close()
                self.session = ExitStack()
                self.conn = self.session.enter_context(connect_raw(self.url))
            figures = state.progress(self.conn, self.name)
        except (psycopg.Error, DatabaseError):
            self.close()  # the workers report their own lost connections
            return
        self.on_report(*figures)

    def close(self) -> None:
        session, self.session, self.conn = self.session, None, None
        if session is not None:
            session.close()


def _reap(procs: list[Any]) -> int:
    """Join the workers; kill those still alive (their open batch rolls back)."""
    killed = 0
    for proc in procs:
        proc.join(timeout=0.5)
        if proc.is_alive():
            proc.kill()
            proc.join()
            killed += 1
    return killed


def _child(settings: Settings, changer: Changer, options: Options, parent: int,
           stop_all: Any, errors: Any, rows: Any) -> None:
    own_stop = threading.Event()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda number, frame: own_stop.set())
    _die_with_parent(signal.SIGTERM)

    def should_stop() -> bool:
        return stop_all.is_set() or own_stop.is_set() or os.getppid() != parent

    worker = Worker(settings, changer.backfill.name, changer, options, should_stop=should_stop)
    try:
        worker.run()
    except BackfillFailed:
        rows.put(worker.stats.rows)
        os._exit(3)  # recorded in umbau_backfills; the parent reads it there
    except UmbauError as exc:
        # Not a child's traceback, nor a line per worker: the parent reports it once,
        # with its exit code (a lost connection is 5, as with one worker).
        rows.put(worker.stats.rows)
        errors.put((exc.exit_code, str(exc)))
        os._exit(exc.exit_code)
    # What this worker changed, for the summary: other runs may have joined the backfill.
    rows.put(worker.stats.rows)


def _die_with_parent(number: int) -> None:
    """Ask Linux to send ``number`` to this process when its parent dies (kill -9 too)."""
    if not sys.platform.startswith("linux"):
        return  # elsewhere the parent pid check in should_stop is the only guard
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, number, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # no prctl (e.g. musl without it): the parent pid check remains
