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
from contextlib import contextmanager
from types import FrameType
from typing import Any

from umbau.backfill import state
from umbau.backfill.batch import Changer
from umbau.backfill.options import Options
from umbau.backfill.worker import Worker
from umbau.errors import BackfillFailed, UmbauError
from umbau.postgres.driver import connect_raw
from umbau.settings import Settings

PROGRESS_INTERVAL = 0.5
# Seconds the parent waits for workers to finish their batch after a stop signal.
STOP_GRACE = 5.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_PR_SET_PDEATHSIG = 1

Report = Callable[[int, int, int, "str | None"], None]


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
        if not enabled or threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {s: signal.signal(s, self._handle) for s in STOP_SIGNALS}
        try:
            yield self
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)

    def _handle(self, number: int, frame: FrameType | None) -> None:
        if self.signal is not None:
            raise KeyboardInterrupt
        self.signal = number
        self.event.set()


def run_processes(settings: Settings, changer: Changer, options: Options, workers: int,
                  report: Report, handle_signals: bool) -> tuple[StopRequest, int]:
    """Run ``workers`` worker processes to the end or until stopped.

    Returns the stop request (its ``signal`` set when one stopped the run) and how many
    workers had to be killed after :data:`STOP_GRACE`.
    """
    ctx = multiprocessing.get_context("fork")
    stop = StopRequest(ctx.Event())
    procs = [ctx.Process(target=_child, args=(settings, changer, options, os.getpid(),
                                              stop.event), daemon=True)
             for _ in range(workers)]
    with stop.on_signals(handle_signals):
        for proc in procs:
            proc.start()
        try:
            _watch(settings, changer.backfill.name, procs, stop, report)
        finally:
            stop.event.set()  # also on KeyboardInterrupt or a lost connection
            killed = _reap(procs)
    return stop, killed


def _watch(settings: Settings, name: str, procs: list[Any], stop: StopRequest,
           report: Report) -> None:
    deadline: float | None = None
    with connect_raw(settings.require_database_url()) as conn:
        while any(p.is_alive() for p in procs):
            report(*state.progress(conn, name))
            if stop.is_set():
                deadline = deadline or time.monotonic() + STOP_GRACE
                if time.monotonic() > deadline:
                    break
            time.sleep(PROGRESS_INTERVAL / 5 if stop.is_set() else PROGRESS_INTERVAL)
        report(*state.progress(conn, name))


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
           stop_all: Any) -> None:
    own_stop = threading.Event()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda number, frame: own_stop.set())
    _die_with_parent(signal.SIGTERM)

    def should_stop() -> bool:
        return stop_all.is_set() or own_stop.is_set() or os.getppid() != parent

    try:
        Worker(settings, changer.backfill.name, changer, options,
               should_stop=should_stop).run()
    except BackfillFailed:
        os._exit(3)  # recorded in umbau_backfills; the parent reads it there
    except UmbauError as exc:
        # One line, not a child's traceback; the parent then reports the chunks left.
        print(f"umbau: error: worker {os.getpid()}: {exc}", file=sys.stderr, flush=True)
        os._exit(exc.exit_code)


def _die_with_parent(number: int) -> None:
    """Ask Linux to send ``number`` to this process when its parent dies (kill -9 too)."""
    if not sys.platform.startswith("linux"):
        return  # elsewhere the parent pid check in should_stop is the only guard
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, number, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # no prctl (e.g. musl without it): the parent pid check remains
