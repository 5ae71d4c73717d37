"""A worker: claims chunks and runs their batches until no chunk is left.

Workers started by ``--workers N``, by another machine running the same command, or
by a rerun after a crash all meet in the chunk table; see :mod:`umbau.backfill.state`.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NoReturn, TypeVar

import psycopg

from umbau.backfill import state
from umbau.backfill.batch import Batch, BatchError, Changer, run_batch
from umbau.backfill.options import Options
from umbau.backfill.throttle import Throttle
from umbau.errors import BackfillFailed
from umbau.postgres.driver import Fault, connect_raw, fault, set_timeouts, translate
from umbau.retry import backoff_delay
from umbau.settings import Settings

T = TypeVar("T")
OnBatch = Callable[[Batch], None]
OnHold = Callable[[str | None], None]
# How often a worker without a free chunk looks again (another worker may die).
IDLE_POLL = 0.25


@contextmanager
def open_session(settings: Settings) -> Iterator[psycopg.Connection]:
    """A batch connection: umbau's session settings plus the run's timeouts."""
    with connect_raw(settings.require_database_url()) as conn:
        set_timeouts(conn, settings.lock_timeout, settings.statement_timeout)
        yield conn


def new_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class WorkerStats:
    rows: int = 0
    batches: int = 0
    retries: int = 0
    chunks: int = 0


class Worker:
    """Runs batches for one backfill on one connection.

    ``fingerprint``: the definition this worker applies; it stops when the backfill of
    its name vanishes or is redeclared with another one. ``on_hold`` hears why batches
    are held (None when they go on again).
    """

    def __init__(self, settings: Settings, name: str, changer: Changer, options: Options,
                 on_batch: OnBatch | None = None,
                 should_stop: Callable[[], bool] | None = None,
                 on_hold: OnHold | None = None) -> None:
        self.settings = settings
        self.name = name
        self.changer = changer
        self.fingerprint = changer.backfill.fingerprint()
        self.options = options
        self.on_batch = on_batch
        self.on_hold = on_hold
        self.should_stop = should_stop or (lambda: False)
        self.owner = new_owner()
        self.stats = WorkerStats()
        self.size = options.batch_size
        self.throttle = (Throttle(options, changer.table.oid) if options.watches_health
                         else None)

    def run(self, conn: psycopg.Connection | None = None) -> WorkerStats:
        """Work until every chunk is done or the backfill stops.

        ``conn``: an autocommit connection to use (a revision's); default a new one.
        Raises BackfillFailed, or DatabaseError when the connection is lost.
        """
        if conn is not None:
            return self._guarded(conn)
        with open_session(self.settings) as own:
            return self._guarded(own)

    def _guarded(self, conn: psycopg.Connection) -> WorkerStats:
        try:
            self._loop(conn)
        except psycopg.Error as exc:
            raise translate(exc, f"backfill {self.name}", conn,
                            "rerun to resume from the checkpoint") from exc
        return self.stats

    def _loop(self, conn: psycopg.Connection) -> None:
        while not self.should_stop():
            chunk = self._state(conn, lambda: state.claim(
                conn, self.name, self.owner, self.options.lease, self.fingerprint))
            if chunk is not None:
                self.stats.chunks += 1
                if self._work_chunk(conn, chunk.chunk) == "stopped":
                    # Paused, cancelled or interrupted: free the chunk now, not when this
                    # session ends (a revision's session lives on) or the lease expires.
                    self._release(conn, chunk.chunk)
                    return
                continue
            status, left = self._state(conn, lambda: (
                state.status_of(conn, self.name, self.fingerprint),
                state.open_chunks(conn, self.name)))
            if left == 0 or status != "running":
                return  # the orchestrator tells done, stopped and vanished apart
            # Chunks are left but others hold them: stay to take over if one dies.
            time.sleep(IDLE_POLL)

    def _work_chunk(self, conn: psycopg.Connection, chunk: int) -> str:
        """Batches until the chunk is done ('done'), taken over ('lost') or the backfill
        stopped ('stopped')."""
        attempt = 0
        while True:
            if self.should_stop() or not self._wait_while_held(conn, chunk):
                return "stopped"
            try:
                batch = run_batch(conn, self.changer, self.name, chunk, self.owner, self.size,
                                  self.options.lease)
            except BatchError as exc:
                attempt += 1
                self._after_error(conn, chunk, attempt, exc)
                continue
            attempt = 0
            if batch.outcome != "ok":
                return batch.outcome
            self._count(batch)
            if batch.chunk_done:
                return "done"
            self.size = self.options.next_size(self.size, batch.duration)
            if self.options.pause:
                time.sleep(self.options.pause)

    def _release(self, conn: psycopg.Connection, chunk: int) -> None:
        self._state(conn, lambda: state.release(conn, self.name, chunk, self.owner))

    def _state(self, conn: psycopg.Connection, action: Callable[[], T]) -> T:
        """Run ``action`` (statements on the state tables) in its own transaction.

        A lock timeout or deadlock there (the state tables locked by a ``--restart``
        check, a long ``pause``, a manual ``LOCK TABLE``) is retried after a jittered
        backoff, up to ``retries`` times in a row, as a batch's is; it no longer ends the
        worker at the first one. Other errors, and the last lock timeout, propagate.
        """
        attempt = 0
        while True:
            try:
                with conn.transaction():
                    return action()
            except psycopg.Error as exc:
                attempt += 1
                if fault(exc, conn) is not Fault.RETRY or attempt > self.settings.retries:
                    raise
                time.sleep(backoff_delay(attempt, self.settings))

    def _count(self, batch: Batch) -> None:
        self.stats.rows += batch.rows
        self.stats.batches += 1
        if self.on_batch is not None:
            self.on_batch(batch)

    def _wait_while_held(self, conn: psycopg.Connection, chunk: int) -> bool:
        """Hold while the throttle says so, keeping the chunk; False if told to stop."""
        if self.throttle is None or self.throttle.check(conn) is None:
            return True
        while (reason := self.throttle.check(conn)) is not None:
            self._held(conn, reason)
            if self.should_stop():
                return False
            self._state(conn, lambda: state.extend_lease(conn, self.name, chunk, self.owner,
                                                         self.options.lease))
            time.sleep(self.options.health_interval)
        self._held(conn, None)
        return True

    def _held(self, conn: psycopg.Connection, reason: str | None) -> None:
        self._state(conn, lambda: state.set_held(conn, self.name, reason))
        if self.on_hold is not None:
            self.on_hold(reason)

    def _after_error(self, conn: psycopg.Connection, chunk: int, attempt: int,
                     exc: BatchError) -> None:
        """Retry, split or fail a batch that was rolled back."""
        if exc.kind is Fault.LOST:
            raise translate(exc.cause, f"backfill {self.name}", conn,
                            "rerun to resume from the checkpoint") from exc.cause
        if exc.kind is Fault.RETRY:
            self._retry(conn, chunk, attempt, exc)
        elif exc.kind is Fault.TIMEOUT and self.size > self.options.min_batch_size:
            # Less work per statement: split the batch until it fits or reaches the floor.
            self.size = max(self.options.min_batch_size, self.size // 2)
            self._add_retry(conn)
        else:
            self._spend_budget(conn, chunk, exc)

    def _add_retry(self, conn: psycopg.Connection) -> None:
        self.stats.retries += 1
        self._state(conn, lambda: state.add_retries(conn, self.name, 1))

    def _retry(self, conn: psycopg.Connection, chunk: int, attempt: int,
               exc: BatchError) -> None:
        """A lock timeout or deadlock: back off, retry with a smaller batch, or give up."""
        self._add_retry(conn)
        if attempt > self.settings.retries:
            self._fail(conn, chunk, exc, f"lock timeouts/deadlocks {attempt} times in a row "
                       f"(last: {exc})")
        self.size = max(self.options.min_batch_size, self.size // 2)
        time.sleep(backoff_delay(attempt, self.settings))

    def _spend_budget(self, conn: psycopg.Connection, chunk: int, exc: BatchError) -> None:
        """A failed batch: retried (smaller, after a pause) while the failure budget
        (``max_failed_batches``, shared by all workers) lasts, else the backfill fails."""
        failed = self._state(conn, lambda: state.count_failed_batch(conn, self.name))
        budget = self.options.max_failed_batches
        if exc.kind is Fault.TIMEOUT:
            message = (f"statement_timeout on a batch of {self.size} row(s), the smallest "
                       f"(min_batch_size) ({exc})")
        else:
            message = str(exc)
        if failed > budget:
            spent = f" ({failed} failed batches, budget {budget})" if budget else ""
            self._fail(conn, chunk, exc, message + spent)
        self._add_retry(conn)
        self.size = max(self.options.min_batch_size, self.size // 2)
        time.sleep(backoff_delay(failed, self.settings))

    def _fail(self, conn: psycopg.Connection, chunk: int, exc: BatchError,
              message: str | None = None) -> NoReturn:
        """Record the error and key range, release the chunk, stop as failed."""
        error = message or str(exc)
        def record() -> None:
            state.record_failure(conn, self.name, error, exc.key_range or None)
            state.release(conn, self.name, chunk, self.owner)

        self._state(conn, record)
        where = f" in key range {exc.key_range}" if exc.key_range else ""
        raise BackfillFailed(
            f"backfill {self.name} failed{where}: {error.splitlines()[0]}; the batch was rolled "
            f"back: fix the cause and rerun to resume from the checkpoint",
            exc.key_range or None) from exc.cause
