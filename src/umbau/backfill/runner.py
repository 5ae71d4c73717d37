"""Running a backfill: plan its chunks once, run workers, verify, record the outcome.

Also the small commands on the state table: status, pause, resume, cancel.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from umbau.backfill import state
from umbau.backfill.api import Backfill
from umbau.backfill.batch import Changer, sample_batch
from umbau.backfill.options import Options, resolve
from umbau.backfill.table import TableInfo, inspect_table, user_sql
from umbau.backfill.worker import Worker, connect_raw, set_timeouts
from umbau.errors import (
    BackfillDefinitionChanged,
    BackfillError,
    BackfillFailed,
    UmbauError,
    UsageError,
    VerificationFailed,
)
from umbau.events import Event, EventHandler, emit
from umbau.settings import Settings

PROGRESS_INTERVAL = 0.5
SAMPLE_KEYS = 10
SAMPLE_ROWS = 20_000


@dataclass
class Verification:
    predicate: str
    failing_rows: int
    sample: list[list[str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failing_rows == 0

    def as_dict(self) -> dict[str, Any]:
        return {"predicate": self.predicate, "ok": self.ok, "failing_rows": self.failing_rows,
                "sample_keys": self.sample}


@dataclass
class BackfillResult:
    """The summary of one run."""

    name: str
    status: str
    rows: int
    rows_total: int
    duration_s: float
    retries: int
    workers: int
    verification: Verification | None = None
    already_done: bool = False

    @property
    def rate(self) -> float:
        return self.rows / self.duration_s if self.duration_s > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "status": self.status, "rows": self.rows,
            "rows_total": self.rows_total, "duration_s": round(self.duration_s, 3),
            "rows_per_s": round(self.rate, 1), "retries": self.retries, "workers": self.workers,
            "already_done": self.already_done,
            "verification": self.verification.as_dict() if self.verification else None,
        }


@dataclass
class DryRunResult:
    name: str
    table: str
    key: list[str]
    rows: int
    sample_rows: int
    sample_s: float
    estimate_s: float | None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "table": self.table, "key": self.key, "rows": self.rows,
                "sample_rows": self.sample_rows, "sample_s": round(self.sample_s, 4),
                "estimate_s": None if self.estimate_s is None else round(self.estimate_s, 1)}


@contextmanager
def _connection(settings: Settings,
                given: psycopg.Connection | None) -> Iterator[psycopg.Connection]:
    """The caller's autocommit connection (a revision's), or a new one with timeouts."""
    if given is not None:
        yield given
        return
    with connect_raw(settings.require_database_url()) as conn:
        set_timeouts(conn, settings)
        yield conn


def run_backfill(settings: Settings, backfill: Backfill, *, workers: int = 1,
                 source: str | None = None, restart: bool = False,
                 on_event: EventHandler | None = None,
                 connection: psycopg.Connection | None = None) -> BackfillResult:
    """Run (or join, or resume) a backfill until every row is done, then verify it.

    Raises BackfillFailed (resumable), BackfillDefinitionChanged, NoUsableKey,
    VerificationFailed. A paused or cancelled backfill returns with that status.
    ``connection``: an autocommit psycopg connection to run on (one worker only).
    ``on_event``: receives ``backfill_progress`` events (rows done of the total, rows/s
    of this run, ETA in seconds) after each batch, or each poll with several workers.
    """
    if workers < 1:
        raise UsageError("--workers must be 1 or more")
    if connection is not None and workers != 1:
        raise UsageError("a backfill on a given connection runs with one worker")
    options = resolve(settings, backfill)
    started = time.perf_counter()
    with _connection(settings, connection) as conn:
        state.ensure_tables(conn)
        table = inspect_table(conn, backfill.table, backfill.key)
        changer = Changer(backfill, table)
        changer.check(conn)
        if restart:
            with conn.transaction():
                state.reset(conn, backfill.name)
        current = _prepare(conn, backfill, table, options, workers, source)
        if current.status == "done":
            verification = _verify(conn, backfill, table)
            if verification is not None and not verification.ok:
                _raise_verification(backfill, verification)
            return BackfillResult(backfill.name, "done", 0, current.rows_done, 0.0, 0, workers,
                                  verification, already_done=True)
        rows_before, retries_before = current.rows_done, current.retries
    reporter = _Reporter(settings, backfill.name, current.rows_total, workers, on_event,
                         rows_before)
    if workers == 1:
        Worker(settings, backfill.name, changer, options, on_batch=reporter.batch).run(connection)
    else:
        _run_processes(settings, backfill, changer, options, workers, reporter)
    with _connection(settings, connection) as conn:
        return _finish(conn, backfill, table, workers, started, rows_before, retries_before)


def _prepare(conn: psycopg.Connection, backfill: Backfill, table: TableInfo, options: Options,
             workers: int, source: str | None) -> state.BackfillState:
    """Create the backfill and its chunks, or check that the existing one is the same."""
    existing = state.load(conn, backfill.name)
    if existing is None:
        with conn.transaction():
            rows_total, bounds, kmin, kmax = _plan_chunks(conn, backfill, table, options, workers)
            state.create(conn, name=backfill.name, table=table.name, key=table.key,
                         kind=backfill.kind, fingerprint=backfill.fingerprint(),
                         definition=backfill.definition(), source=source, rows_total=rows_total,
                         bounds=bounds, key_min=kmin, key_max=kmax)
        existing = state.load(conn, backfill.name)
        assert existing is not None
    if existing.fingerprint != backfill.fingerprint():
        raise BackfillDefinitionChanged(
            f"backfill {backfill.name} already exists ({existing.status}) with a different "
            f"definition (table {existing.table}): give the new one another name, or pass "
            "--restart to forget the old state")
    if existing.status == "paused":
        raise BackfillError(f"backfill {backfill.name} is paused: run `umbau backfill resume "
                            f"{backfill.name}` to continue")
    if existing.status == "cancelled":
        raise BackfillError(f"backfill {backfill.name} was cancelled: pass --restart to start it "
                            "again, or declare it under a new name")
    if existing.status == "failed":
        with conn.transaction():
            state.set_status(conn, backfill.name, "running", only_from=["failed"])
        existing.status = "running"
    return existing


def _plan_chunks(conn: psycopg.Connection, backfill: Backfill, table: TableInfo,
                 options: Options, workers: int) -> tuple[int, list[list[str]],
                                                          list[str] | None, list[str] | None]:
    """(rows to change, chunk boundaries, smallest key, largest key).

    The first chunk starts below the smallest key and the last one ends above the
    largest, so rows inserted at either end while the backfill runs are covered too.
    """
    rows_total, all_rows = _count(conn, backfill, table)
    wanted = options.chunks or max(workers * 4 if workers > 1 else 1,
                                   math.ceil(all_rows / options.rows_per_chunk))
    wanted = max(1, min(wanted, all_rows or 1, 4096))
    edge = sql.SQL("SELECT {} FROM {} ORDER BY {} {} LIMIT 1")
    kmin = conn.execute(edge.format(table.key_text(), table.ident, table.key_cols(),
                                    sql.SQL(""))).fetchone()
    desc = sql.SQL(", ").join(sql.SQL("{} DESC").format(sql.Identifier(k)) for k in table.key)
    kmax = conn.execute(sql.SQL("SELECT {} FROM {} ORDER BY {} LIMIT 1").format(
        table.key_text(), table.ident, desc)).fetchone()
    bounds = _bounds(conn, table, all_rows, wanted) if wanted > 1 else []
    return rows_total, bounds, list(kmin) if kmin else None, list(kmax) if kmax else None


def _bounds(conn: psycopg.Connection, table: TableInfo, all_rows: int,
            wanted: int) -> list[list[str]]:
    """``wanted - 1`` keys that cut the table into about equal chunks, from a block
    sample of about 20,000 rows (chunk sizes need not be exact, only ordered)."""
    percent = min(100.0, 100.0 * SAMPLE_ROWS / max(all_rows, 1))
    sample = "" if percent >= 100 else f" TABLESAMPLE SYSTEM ({percent:.6f}) REPEATABLE (0)"
    keys = [list(r) for r in conn.execute(sql.SQL("SELECT {} FROM {}{} ORDER BY {}").format(
        table.key_text(), table.ident, sql.SQL(sample), table.key_cols()))]
    if len(keys) < wanted:
        return keys[:-1] if keys else []
    step = len(keys) / wanted
    return [keys[int(step * i)] for i in range(1, wanted)]


def _count(conn: psycopg.Connection, backfill: Backfill, table: TableInfo) -> tuple[int, int]:
    """(rows ``where`` selects, all rows) of the table."""
    where = user_sql(backfill.where) if backfill.where else sql.SQL("TRUE")
    row = conn.execute(sql.SQL("SELECT count(*) FILTER (WHERE {}), count(*) FROM {}").format(
        where, table.ident), []).fetchone()  # a list: see table.user_sql
    return (int(row[0]), int(row[1])) if row else (0, 0)


def _scalar(conn: psycopg.Connection, query: sql.Composed) -> int:
    row = conn.execute(query, []).fetchone()  # a list: see table.user_sql
    return int(row[0]) if row else 0


class _Reporter:
    """Turns batches (one worker) or the state table (several) into progress events."""

    def __init__(self, settings: Settings, name: str, rows_total: int | None, workers: int,
                 on_event: EventHandler | None, rows_before: int) -> None:
        self.settings = settings
        self.name = name
        self.rows_total = rows_total
        self.workers = workers
        self.on_event = on_event
        self.rows_before = rows_before
        self.rows_run = 0
        self.started = time.perf_counter()

    def batch(self, batch: Any) -> None:
        self.rows_run += batch.rows
        self.report(self.rows_before + self.rows_run, 0, 0)

    def report(self, rows_done: int, chunks_done: int, chunks: int) -> None:
        if self.on_event is None:
            return
        elapsed = time.perf_counter() - self.started
        rate = (rows_done - self.rows_before) / elapsed if elapsed > 0 else 0.0
        eta = None
        if self.rows_total and rate > 0:
            eta = max(0.0, (self.rows_total - rows_done) / rate)
        emit(self.on_event, Event("backfill_progress", message=f"backfill {self.name}",
                                  done=rows_done, total=self.rows_total, unit="rows",
                                  rate=rate, eta=eta, duration=elapsed))


def _run_processes(settings: Settings, backfill: Backfill, changer: Changer, options: Options,
                   workers: int, reporter: _Reporter) -> None:
    """N forked workers (they inherit the backfill, transform included); the parent
    polls the state table for progress. Children stop when the parent dies."""
    ctx = multiprocessing.get_context("fork")
    parent = os.getpid()
    procs = [ctx.Process(target=_child, args=(settings, backfill.name, changer, options, parent),
                         daemon=True) for _ in range(workers)]
    for proc in procs:
        proc.start()
    try:
        with connect_raw(settings.require_database_url()) as conn:
            while any(p.is_alive() for p in procs):
                reporter.report(*state.progress(conn, backfill.name))
                time.sleep(PROGRESS_INTERVAL)
            reporter.report(*state.progress(conn, backfill.name))
    finally:
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()


def _child(settings: Settings, name: str, changer: Changer, options: Options,
           parent: int) -> None:
    try:
        Worker(settings, name, changer, options,
               should_stop=lambda: os.getppid() != parent).run()
    except BackfillFailed:
        os._exit(3)  # recorded in umbau_backfills; the parent reads it there
    except UmbauError as exc:
        # One line, not a child's traceback; the parent then reports the chunks left.
        print(f"umbau: error: worker {os.getpid()}: {exc}", file=sys.stderr, flush=True)
        os._exit(exc.exit_code)


def _finish(conn: psycopg.Connection, backfill: Backfill, table: TableInfo, workers: int,
            started: float, rows_before: int, retries_before: int) -> BackfillResult:
    """Read the outcome from the state table; verify and mark done when every chunk is."""
    current = state.load(conn, backfill.name)
    assert current is not None
    rows = current.rows_done - rows_before
    retries = current.retries - retries_before
    duration = time.perf_counter() - started
    if current.status == "failed":
        raise BackfillFailed(
            f"backfill {backfill.name} failed in key range {current.last_error_range}: "
            f"{(current.last_error or '').splitlines()[0]}; fix the cause and rerun to "
            "resume from the checkpoint", current.last_error_range)
    left = state.open_chunks(conn, backfill.name)
    if current.status != "running" or left:
        if current.status == "running":
            raise BackfillFailed(f"backfill {backfill.name}: a worker stopped with {left} "
                                 "chunk(s) left: rerun to resume from the checkpoint")
        return BackfillResult(backfill.name, current.status, rows, current.rows_done,
                              duration, retries, workers)
    verification = _verify(conn, backfill, table)
    if verification is not None:
        conn.execute("UPDATE umbau_backfills SET verification = %s WHERE name = %s",
                     (Jsonb(verification.as_dict()), backfill.name))
    if verification is not None and not verification.ok:
        # Failed, not done: once the data is fixed, a rerun has no rows left to change
        # and verifies again.
        state.record_failure(conn, backfill.name, f"verification: {verification.failing_rows} "
                             f"row(s) fail {verification.predicate}", None)
        _raise_verification(backfill, verification)
    state.set_status(conn, backfill.name, "done", only_from=["running"])
    return BackfillResult(backfill.name, "done", rows, current.rows_done, duration, retries,
                          workers, verification)


def _verify(conn: psycopg.Connection, backfill: Backfill, table: TableInfo) -> Verification | None:
    """Count the rows for which ``verify`` is not true (false or NULL), with a sample."""
    if not backfill.verify:
        return None
    failing = sql.SQL("{} IS NOT TRUE").format(user_sql(backfill.verify))
    count = _scalar(conn, sql.SQL("SELECT count(*) FROM {} WHERE {}").format(table.ident,
                                                                                failing))
    sample = [list(r) for r in conn.execute(sql.SQL(
        "SELECT {} FROM {} WHERE {} ORDER BY {} LIMIT {}").format(
        table.key_text(), table.ident, failing, table.key_cols(), sql.Literal(SAMPLE_KEYS)),
        [])]
    return Verification(backfill.verify, count, sample)


def _raise_verification(backfill: Backfill, verification: Verification) -> None:
    keys = "; ".join(", ".join(k) for k in verification.sample[:5])
    raise VerificationFailed(
        f"backfill {backfill.name} is done but {verification.failing_rows} row(s) fail "
        f"`{verification.predicate}` (keys {keys}): fix the change or the data and check "
        "with `umbau backfill status`", verification.failing_rows, verification.sample)


def dry_run(settings: Settings, backfill: Backfill) -> DryRunResult:
    """Count the rows and time one sample batch that is rolled back; no state is written."""
    options = resolve(settings, backfill)
    with connect_raw(settings.require_database_url()) as conn:
        set_timeouts(conn, settings)
        table = inspect_table(conn, backfill.table, backfill.key)
        changer = Changer(backfill, table)
        changer.check(conn)
        rows, all_rows = _count(conn, backfill, table)
        sample_rows, seconds = sample_batch(conn, changer, options.batch_size)
    # The run pages over every key, not only the rows `where` selects: the sample
    # batch covered `batch_size` keys of them.
    scanned = min(options.batch_size, max(all_rows, 1))
    estimate = all_rows * seconds / scanned if seconds > 0 else None
    return DryRunResult(backfill.name, table.name, list(table.key), rows, sample_rows, seconds,
                        estimate)


def backfill_status(settings: Settings, name: str | None = None) -> list[state.BackfillState]:
    """The state of one backfill (BackfillError if unknown) or of all of them."""
    with connect_raw(settings.require_database_url()) as conn:
        names = [name] if name else state.list_names(conn)
        found = [s for s in (state.load(conn, n) for n in names) if s is not None]
    if name and not found:
        raise BackfillError(f"no backfill named {name!r}: see `umbau backfill status` for the "
                            "known ones")
    return found


def _transition(settings: Settings, name: str, to: str, only_from: Sequence[str]) -> str:
    with connect_raw(settings.require_database_url()) as conn:
        current = state.load(conn, name)
        if current is None:
            raise BackfillError(f"no backfill named {name!r}: see `umbau backfill status`")
        if current.status == to:
            return to
        if not state.set_status(conn, name, to, only_from=only_from):
            raise BackfillError(f"backfill {name} is {current.status}, it cannot become {to}: "
                                "see `umbau backfill status`")
    return to


def pause(settings: Settings, name: str) -> str:
    """Workers stop after their current batch; ``resume`` continues."""
    return _transition(settings, name, "paused", ["running"])


def resume(settings: Settings, name: str) -> str:
    """Mark a paused (or failed) backfill running again; run it to continue."""
    return _transition(settings, name, "running", ["paused", "failed"])


def cancel(settings: Settings, name: str) -> str:
    """Stop for good after the current batches; changed rows stay changed."""
    return _transition(settings, name, "cancelled", ["running", "paused", "failed"])


def stored_source(settings: Settings, name: str) -> str | None:
    """The ``module:attribute`` a backfill was started from, if the CLI started it."""
    return backfill_status(settings, name)[0].source
