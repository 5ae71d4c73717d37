"""Running a backfill: plan its chunks once, run workers, verify, record the outcome."""

from __future__ import annotations

import math
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from umbau.backfill import state
from umbau.backfill.api import Backfill
from umbau.backfill.batch import Changer
from umbau.backfill.options import Options, resolve
from umbau.backfill.processes import STOP_GRACE, Outcome, StopNow, StopRequest, run_processes
from umbau.backfill.table import TableInfo, inspect_table, user_sql
from umbau.backfill.worker import Worker, open_session
from umbau.errors import (
    EXIT_DATABASE,
    EXIT_USAGE,
    BackfillDefinitionChanged,
    BackfillError,
    BackfillFailed,
    BackfillInterrupted,
    BackfillInUse,
    BackfillStateLost,
    DatabaseError,
    UmbauError,
    UsageError,
    VerificationFailed,
)
from umbau.events import Event, EventHandler, emit
from umbau.postgres.driver import Fault, database_errors, fault, translate
from umbau.postgres.errors import describe_error
from umbau.settings import Settings

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


@contextmanager
def _connection(settings: Settings,
                given: psycopg.Connection | None) -> Iterator[psycopg.Connection]:
    """The caller's autocommit connection (a revision's), or a new one with timeouts."""
    if given is not None:
        yield given
        return
    with open_session(settings) as conn:
        yield conn


def run_backfill(settings: Settings, backfill: Backfill, *, workers: int = 1,
                 source: str | None = None, restart: bool = False,
                 on_event: EventHandler | None = None,
                 connection: psycopg.Connection | None = None,
                 max_failed_batches: int | None = None,
                 handle_signals: bool = False) -> BackfillResult:
    """Run (or join, or resume) a backfill until every row is done, then verify it.

    ``connection``: an autocommit psycopg connection to run on (one worker only).
    ``on_event``: receives ``backfill_progress`` events (rows done of the total, rows/s
    of this run, ETA in seconds; ``data["held"]`` says why batches wait) after each
    batch, or each poll with several workers.
    ``max_failed_batches``: the failure budget (overrides ``[tool.umbau.backfill]``).
    ``handle_signals``: SIGINT/SIGTERM stop the run after the current batches (the CLI
    sets it; main thread only). Raises BackfillFailed (resumable), BackfillInterrupted,
    BackfillInUse (``restart`` while a live worker owns it), BackfillStateLost,
    BackfillDefinitionChanged, NoUsableKey, UsageError, VerificationFailed. A paused or
    cancelled backfill returns with that status.
    """
    if workers < 1:
        raise UsageError("--workers must be 1 or more")
    if connection is not None and workers != 1:
        raise UsageError("a backfill on a given connection runs with one worker")
    options = resolve(settings, backfill, max_failed_batches=max_failed_batches)
    outside = StopNow()
    try:
        with outside.on_signals(handle_signals), database_errors(
                f"backfill {backfill.name}", "rerun to resume from the checkpoint"):
            return _run(settings, backfill, options, workers, source, restart, on_event,
                        connection, handle_signals)
    except (KeyboardInterrupt, UmbauError) as exc:
        if outside.signal is None or isinstance(exc, BackfillInterrupted):
            raise
        raise BackfillInterrupted(
            f"backfill {backfill.name} stopped by {signal.Signals(outside.signal).name} "
            "outside its batches (checking, counting or verifying); no batch was open: "
            "rerun to resume", outside.signal, 0, None) from exc


def _run(settings: Settings, backfill: Backfill, options: Options, workers: int,
         source: str | None, restart: bool, on_event: EventHandler | None,
         connection: psycopg.Connection | None, handle_signals: bool) -> BackfillResult:
    started = time.perf_counter()
    with _connection(settings, connection) as conn:
        table = inspect_table(conn, backfill.table, backfill.key)
        changer = Changer(backfill, table)
        changer.check(conn)
        state.ensure_tables(conn)  # after the checks: bad input leaves the database as it was
        if restart:
            _restart(conn, backfill.name)
        current = _prepare(conn, backfill, table, options, workers, source)
        if current.status == "done":
            return _already_done(conn, backfill, table, current, workers)
        before = _Before(current.rows_done, current.retries, started)
    reporter = _Reporter(backfill.name, current.rows_total, workers, on_event,
                         before.rows)
    outcome = _work(settings, changer, options, workers, reporter, connection, handle_signals)
    with _connection(settings, connection) as conn:
        return _finish(conn, backfill, table, workers, before, outcome)


@dataclass(frozen=True)
class _Before:
    """Where the backfill stood when this run began."""

    rows: int
    retries: int
    started: float


def _work(settings: Settings, changer: Changer, options: Options, workers: int,
          reporter: _Reporter, connection: psycopg.Connection | None,
          handle_signals: bool) -> Outcome:
    """Run the workers; returns how they ended (one worker raises its own error)."""
    if workers > 1:
        return run_processes(settings, changer, options, workers, reporter.report,
                             handle_signals)
    stop = StopRequest()
    with stop.on_signals(handle_signals):
        stats = Worker(settings, changer.backfill.name, changer, options,
                       on_batch=reporter.batch, should_stop=stop.is_set,
                       on_hold=reporter.hold).run(connection)
    return Outcome(stop, rows=stats.rows)


def _restart(conn: psycopg.Connection, name: str) -> None:
    """Forget the backfill's state, unless a live worker still owns part of it."""
    try:
        with conn.transaction():
            live = state.reset(conn, name)
    except psycopg.Error as exc:
        if fault(exc, conn) is not Fault.RETRY:
            raise translate(exc, f"backfill {name}: --restart", conn) from exc
        # A batch held its chunk longer than lock_timeout: it is running right now.
        live = state.live_owners(conn, name)
    if live:
        raise BackfillInUse(
            f"backfill {name} is running: {live[0]}"
            f"{f' (and {len(live) - 1} more)' if len(live) > 1 else ''}; "
            f"stop it first (`umbau backfill pause {name}`, or wait for it), then --restart",
            [str(owner) for owner in live])


def _already_done(conn: psycopg.Connection, backfill: Backfill, table: TableInfo,
                  current: state.BackfillState, workers: int) -> BackfillResult:
    verification = _verify(conn, backfill, table)
    if verification is not None and not verification.ok:
        _raise_verification(backfill, verification)
    return BackfillResult(backfill.name, "done", 0, current.rows_done, 0.0, 0, workers,
                          verification, already_done=True)


def _prepare(conn: psycopg.Connection, backfill: Backfill, table: TableInfo, options: Options,
             workers: int, source: str | None) -> state.BackfillState:
    """Create the backfill and its chunks, or check that the existing one is the same."""
    existing = state.load(conn, backfill.name)
    if existing is None:
        with conn.transaction():
            with scanning(conn, backfill.name, f"counting the rows of {table.name}"):
                rows_total, bounds, kmin, kmax = _plan_chunks(conn, backfill, table, options,
                                                              workers)
            state.create(conn, name=backfill.name, table=table.name, key=table.key,
                         kind=backfill.kind, fingerprint=backfill.fingerprint(),
                         definition=backfill.definition(), source=source, rows_total=rows_total,
                         bounds=bounds, key_min=kmin, key_max=kmax)
        existing = state.load(conn, backfill.name)
        if existing is None:
            raise _state_lost(backfill.name)
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


@contextmanager
def scanning(conn: psycopg.Connection, name: str, what: str) -> Iterator[None]:
    """A scan of the whole table (count, plan, verify): its errors in one line, a
    statement_timeout with the way out."""
    try:
        yield
    except psycopg.Error as exc:
        if fault(exc, conn) is Fault.TIMEOUT:
            raise BackfillError(
                f"backfill {name}: {what} hit statement_timeout ({describe_error(exc)}): give "
                "the backfill a longer one (--statement-timeout 30min, or off) and rerun") from exc
        raise translate(exc, f"backfill {name}: {what}", conn) from exc


def _plan_chunks(conn: psycopg.Connection, backfill: Backfill, table: TableInfo,
                 options: Options, workers: int) -> tuple[int, list[list[str]],
                                                          list[str] | None, list[str] | None]:
    """(rows to change, chunk boundaries, smallest key, largest key).

    The first chunk starts below the smallest key and the last one ends above the
    largest, so rows inserted at either end while the backfill runs are covered too.
    """
    rows_total, all_rows = count_rows(conn, backfill, table)
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


def count_rows(conn: psycopg.Connection, backfill: Backfill, table: TableInfo) -> tuple[int, int]:
    """(rows ``where`` selects, all rows) of the table."""
    where = user_sql(backfill.where) if backfill.where else sql.SQL("TRUE")
    row = conn.execute(sql.SQL("SELECT count(*) FILTER (WHERE {}), count(*) FROM {}").format(
        where, table.ident), []).fetchone()  # a list: see table.user_sql
    return (int(row[0]), int(row[1])) if row else (0, 0)


def _scalar(conn: psycopg.Connection, query: sql.Composed) -> int:
    row = conn.execute(query, []).fetchone()  # a list: see table.user_sql
    return int(row[0]) if row else 0


class _Reporter:
    """Turns batches and holds (one worker) or the state table (several) into
    ``backfill_progress`` events."""

    def __init__(self, name: str, rows_total: int | None, workers: int,
                 on_event: EventHandler | None, rows_before: int) -> None:
        self.name = name
        self.rows_total = rows_total
        self.workers = workers
        self.on_event = on_event
        self.rows_before = rows_before
        self.rows_run = 0
        self.held: str | None = None
        self.started = time.perf_counter()

    def batch(self, batch: Any) -> None:
        self.rows_run += batch.rows
        self.report(self.rows_before + self.rows_run, 0, 0, self.held)

    def hold(self, reason: str | None) -> None:
        self.held = reason
        self.report(self.rows_before + self.rows_run, 0, 0, reason)

    def report(self, rows_done: int, chunks_done: int, chunks: int,
               held: str | None = None) -> None:
        if self.on_event is None:
            return
        elapsed = time.perf_counter() - self.started
        rate = (rows_done - self.rows_before) / elapsed if elapsed > 0 else 0.0
        eta = None
        if self.rows_total and rate > 0:
            eta = max(0.0, (self.rows_total - rows_done) / rate)
        message = f"backfill {self.name}" + (f" (held: {held})" if held else "")
        emit(self.on_event, Event("backfill_progress", message=message, done=rows_done,
                                  total=self.rows_total, unit="rows", rate=rate, eta=eta,
                                  duration=elapsed,
                                  data={"held": held, "chunks_done": chunks_done,
                                        "chunks": chunks, "workers": self.workers}))


def _state_lost(name: str) -> BackfillStateLost:
    return BackfillStateLost(
        f"backfill {name}: its state vanished while this run worked on it (reset with "
        "--restart elsewhere?); the rows changed so far stay changed: see `umbau backfill "
        "status`, then rerun")


def _finish(conn: psycopg.Connection, backfill: Backfill, table: TableInfo, workers: int,
            before: _Before, outcome: Outcome) -> BackfillResult:
    """Read the outcome from the state table; verify and mark done when every chunk is."""
    current = state.load(conn, backfill.name)
    if current is None or current.fingerprint != backfill.fingerprint():
        raise _state_lost(backfill.name)
    # The rows this run changed: other runs (another machine, a second operator) may
    # have worked on the same backfill meanwhile.
    rows = current.rows_done - before.rows if outcome.rows is None else outcome.rows
    retries = current.retries - before.retries
    duration = time.perf_counter() - before.started
    if current.status == "failed":
        raise BackfillFailed(
            f"backfill {backfill.name} failed in key range {current.last_error_range}: "
            f"{(current.last_error or '').splitlines()[0]}; fix the cause and rerun to "
            "resume from the checkpoint", current.last_error_range)
    left = state.open_chunks(conn, backfill.name)
    if left and outcome.stop.signal is not None:
        raise _interrupted(backfill.name, current, outcome.stop.signal, outcome.killed)
    if current.status != "running" or left:
        if current.status == "running":
            raise _workers_failed(backfill.name, left, outcome.errors)
        # done by another run that joined: its verification is this one's too
        return BackfillResult(backfill.name, current.status, rows, current.rows_done,
                              duration, retries, workers, _stored(current.verification))
    return _complete(conn, backfill, table, workers, current, rows, retries, duration)


def _stored(verification: dict[str, Any] | None) -> Verification | None:
    """The verification another run recorded in ``umbau_backfills``."""
    if not verification:
        return None
    return Verification(verification["predicate"], int(verification["failing_rows"]),
                        verification.get("sample_keys", []))


def _workers_failed(name: str, left: int, errors: list[tuple[int, str]]) -> UmbauError:
    """The error of workers that ended early, with its own exit code (a lost connection
    is a DatabaseError, exit code 5, whether one worker ran or several)."""
    if not errors:
        return BackfillFailed(f"backfill {name}: a worker stopped with {left} chunk(s) left: "
                              "rerun to resume from the checkpoint")
    code, message = errors[0]
    more = f" ({len(errors)} workers ended so)" if len(errors) > 1 else ""
    kind = {EXIT_DATABASE: DatabaseError, EXIT_USAGE: UsageError}.get(code, BackfillError)
    return kind(f"{message}{more}; {left} chunk(s) left")


def _interrupted(name: str, current: state.BackfillState, number: int,
                 killed: int) -> BackfillInterrupted:
    total = "?" if current.rows_total is None else f"{current.rows_total:,}"
    late = (f" ({killed} worker(s) still busy after {STOP_GRACE:g} s were killed: their open "
            "batches rolled back)") if killed else ""
    return BackfillInterrupted(
        f"backfill {name} stopped by {signal.Signals(number).name} after the current batches: "
        f"{current.rows_done:,} of {total} rows done{late}; rerun to resume",
        number, current.rows_done, current.rows_total)


def _complete(conn: psycopg.Connection, backfill: Backfill, table: TableInfo, workers: int,
              current: state.BackfillState, rows: int, retries: int,
              duration: float) -> BackfillResult:
    """Every chunk is done: verify, then mark the backfill done (or failed)."""
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
    with scanning(conn, backfill.name, f"verifying {table.name}"):
        return _count_failing(conn, backfill.verify, table)


def _count_failing(conn: psycopg.Connection, predicate: str, table: TableInfo) -> Verification:
    failing = sql.SQL("{} IS NOT TRUE").format(user_sql(predicate))
    count = _scalar(conn, sql.SQL("SELECT count(*) FROM {} WHERE {}").format(table.ident,
                                                                                failing))
    sample = [list(r) for r in conn.execute(sql.SQL(
        "SELECT {} FROM {} WHERE {} ORDER BY {} LIMIT {}").format(
        table.key_text(), table.ident, failing, table.key_cols(), sql.Literal(SAMPLE_KEYS)),
        [])]
    return Verification(predicate, count, sample)


def _raise_verification(backfill: Backfill, verification: Verification) -> None:
    keys = "; ".join(", ".join(k) for k in verification.sample[:5])
    raise VerificationFailed(
        f"backfill {backfill.name} is done but {verification.failing_rows} row(s) fail "
        f"`{verification.predicate}` (keys {keys}): fix the change or the data and check "
        "with `umbau backfill status`", verification.failing_rows, verification.sample)
