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

import psycopg

from umbau.backfill import state
from umbau.backfill.batch import Batch, BatchError, Changer, run_batch
from umbau.backfill.options import Options
from umbau.errors import BackfillFailed, DatabaseError
from umbau.postgres.connect import APPLICATION_NAME, normalize_url, translate_connect_error
from umbau.retry import backoff_delay
from umbau.settings import Settings

OnBatch = Callable[[Batch], None]
# How often a worker without a free chunk looks again (another worker may die).
IDLE_POLL = 0.25


@contextmanager
def connect_raw(url: str) -> Iterator[psycopg.Connection]:
    """A psycopg connection (not SQLAlchemy: batches need explicit transaction control)."""
    parsed = normalize_url(url)
    conninfo = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        # autocommit: every transaction is an explicit conn.transaction() block, and a read
        # outside one never leaves an implicit transaction open.
        # keepalives: a machine that vanishes (power loss) without closing its connection
        # is noticed within about a minute, and its batch's row locks released
        conn = psycopg.connect(conninfo, application_name=APPLICATION_NAME, connect_timeout=10,
                               autocommit=True, keepalives=1, keepalives_idle=30,
                               keepalives_interval=10, keepalives_count=3)
    except psycopg.OperationalError as exc:
        raise translate_connect_error(exc, parsed) from exc
    try:
        # The settings that shape ``key::text``: checkpoints written by one session are read
        # back by others (other machines, with their own PGDATESTYLE or database default),
        # and a key that does not survive the round trip would be skipped or changed twice.
        # ISO dates are also the only ones psycopg can load (created_at and the like).
        conn.execute("SELECT set_config('DateStyle', 'ISO, YMD', false), "
                     "set_config('IntervalStyle', 'postgres', false), "
                     "set_config('extra_float_digits', '3', false), "
                     # a batch is short (~200 ms): a session idle inside one is stuck
                     "set_config('idle_in_transaction_session_timeout', '60s', false)")
        yield conn
    finally:
        conn.close()


def set_timeouts(conn: psycopg.Connection, settings: Settings) -> None:
    """lock_timeout and statement_timeout for every batch of this session."""
    with conn.transaction():
        conn.execute("SELECT set_config('lock_timeout', %s, false), "
                     "set_config('statement_timeout', %s, false)",
                     (_ms(settings.lock_timeout), _ms(settings.statement_timeout)))


def _ms(seconds: float | None) -> str:
    return "0" if seconds is None else f"{max(1, round(seconds * 1000))}ms"


def new_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class WorkerStats:
    rows: int = 0
    batches: int = 0
    retries: int = 0
    chunks: int = 0


class Worker:
    """Runs batches for one backfill on one connection."""

    def __init__(self, settings: Settings, name: str, changer: Changer, options: Options,
                 on_batch: OnBatch | None = None,
                 should_stop: Callable[[], bool] | None = None) -> None:
        self.settings = settings
        self.name = name
        self.changer = changer
        self.options = options
        self.on_batch = on_batch
        self.should_stop = should_stop or (lambda: False)
        self.owner = new_owner()
        self.stats = WorkerStats()
        self.size = options.batch_size

    def run(self, conn: psycopg.Connection | None = None) -> WorkerStats:
        """Work until every chunk is done or the backfill stops; raises BackfillFailed.

        ``conn``: an autocommit connection to use (a revision's); default a new one.
        """
        if conn is not None:
            return self._guarded(conn)
        with connect_raw(self.settings.require_database_url()) as own:
            set_timeouts(own, self.settings)
            return self._guarded(own)

    def _guarded(self, conn: psycopg.Connection) -> WorkerStats:
        try:
            self._loop(conn)
        except psycopg.OperationalError as exc:
            raise DatabaseError(f"lost the database connection during backfill {self.name} "
                                f"({exc}); rerun to resume from the checkpoint") from exc
        return self.stats

    def _loop(self, conn: psycopg.Connection) -> None:
        while not self.should_stop():
            with conn.transaction():
                chunk = state.claim(conn, self.name, self.owner, self.options.lease)
            if chunk is not None:
                self.stats.chunks += 1
                if self._work_chunk(conn, chunk.chunk) == "stopped":
                    # Paused or cancelled: free the chunk now, not when this session ends
                    # (a revision's session lives on) or the lease expires.
                    with conn.transaction():
                        state.release(conn, self.name, chunk.chunk, self.owner)
                    return
                continue
            with conn.transaction():
                row = conn.execute("SELECT status FROM umbau_backfills WHERE name = %s",
                                   (self.name,)).fetchone()
                left = state.open_chunks(conn, self.name)
            if left == 0 or row is None or row[0] != "running":
                return
            # Chunks are left but others hold them: stay to take over if one dies.
            time.sleep(IDLE_POLL)

    def _work_chunk(self, conn: psycopg.Connection, chunk: int) -> str:
        """Batches until the chunk is done ('done'), taken over ('lost') or the backfill
        stopped ('stopped')."""
        attempt = 0
        while True:
            if self.should_stop():
                return "stopped"
            try:
                batch = run_batch(conn, self.changer, self.name, chunk, self.owner, self.size,
                                  self.options.lease)
            except BatchError as exc:
                self._fail(conn, chunk, exc)
            except psycopg.Error as exc:
                if conn.broken:
                    raise
                attempt += 1
                self._retry(conn, chunk, attempt, exc)
                continue
            attempt = 0
            if batch.outcome != "ok":
                return batch.outcome
            self.stats.rows += batch.rows
            self.stats.batches += 1
            if self.on_batch is not None:
                self.on_batch(batch)
            if batch.chunk_done:
                return "done"
            self.size = self.options.next_size(self.size, batch.duration)
            if self.options.pause:
                time.sleep(self.options.pause)

    def _retry(self, conn: psycopg.Connection, chunk: int, attempt: int,
               exc: psycopg.Error) -> None:
        """A lock timeout or deadlock: back off, retry with a smaller batch, or give up."""
        self.stats.retries += 1
        with conn.transaction():
            state.add_retries(conn, self.name, 1)
        if attempt > self.settings.retries:
            error = (f"lock timeouts/deadlocks {attempt} times in a row (last: "
                     f"{exc.sqlstate} {str(exc).strip()})")
            self._fail(conn, chunk, BatchError(exc, ""), error)
        self.size = max(self.options.min_batch_size, self.size // 2)
        time.sleep(backoff_delay(attempt, self.settings))

    def _fail(self, conn: psycopg.Connection, chunk: int, exc: BatchError,
              message: str | None = None) -> None:
        """Record the error and key range, release the chunk, stop as failed."""
        error = message or str(exc)
        with conn.transaction():
            state.record_failure(conn, self.name, error, exc.key_range or None)
            state.release(conn, self.name, chunk, self.owner)
        where = f" in key range {exc.key_range}" if exc.key_range else ""
        raise BackfillFailed(
            f"backfill {self.name} failed{where}: {error.splitlines()[0]}; the batch was rolled "
            f"back: fix the cause and rerun to resume from the checkpoint",
            exc.key_range or None) from exc.cause
