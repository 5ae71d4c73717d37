"""The migration runner: lock, timeouts, one transaction per revision, retries, history.

Every step that changes the version table goes through :func:`migrate`:

1. take the migrator lock (a session advisory lock on a dedicated connection,
   polled, bounded by ``lock_wait``);
2. open the migration connection with ``lock_timeout``/``statement_timeout``;
3. run env.py with the step function; each revision runs in its own
   transaction that also stamps the version and writes its history row;
4. on lock timeout or deadlock the failed revision has been rolled back:
   wait with jittered exponential backoff and run again from where it stopped;
5. any other error: record a failed history row and raise.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from umbau import alembic_bridge as bridge
from umbau.errors import (
    IrreversibleRevision,
    MigrationFailed,
    PartiallyApplied,
    RetriesExhausted,
    UmbauError,
)
from umbau.events import Event, EventHandler, emit
from umbau.postgres import catalog, history
from umbau.postgres.blockers import (
    Blocker,
    BlockerWatch,
    cancel,
    describe_all,
    old_lock_holders,
)
from umbau.postgres.connect import (
    LOCK_NOT_AVAILABLE,
    RETRYABLE_SQLSTATES,
    connect,
    set_timeouts,
    sqlstate,
)
from umbau.postgres.errors import describe_error
from umbau.postgres.locks import LockHolder, migrator_lock
from umbau.postgres.quoting import parse_qualified, quote_ident
from umbau.retry import backoff_delay
from umbau.settings import Settings


@dataclass(frozen=True)
class StepResult:
    revision: str
    down_revision: str | None
    direction: str
    message: str
    started_at: datetime
    finished_at: datetime
    attempts: int

    @property
    def duration(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()

    def as_dict(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "down_revision": self.down_revision,
            "direction": self.direction,
            "message": self.message,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "duration_s": round(self.duration, 6),
            "attempts": self.attempts,
        }


@dataclass
class MigrateResult:
    direction: str
    target: str
    before: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    steps: list[StepResult] = field(default_factory=list)
    retries: int = 0
    lock_waited_s: float = 0.0
    duration_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "direction": self.direction,
            "target": self.target,
            "before": list(self.before),
            "after": list(self.after),
            "steps": [s.as_dict() for s in self.steps],
            "retries": self.retries,
            "lock_waited_s": round(self.lock_waited_s, 3),
            "duration_s": round(self.duration_s, 3),
        }


class _StepRecorder:
    """Times steps and writes their history rows inside their own transactions."""

    def __init__(self, project: bridge.Project, settings: Settings, direction: str,
                 on_event: EventHandler | None) -> None:
        self.project = project
        self.settings = settings
        self.direction = direction
        self.on_event = on_event
        self.attempts: dict[str, int] = {}
        self.done: list[StepResult] = []
        self.current: Any = None
        self.started: datetime | None = None
        self.heads: tuple[str, ...] | None = None  # the version table after the last step
        # A step is done once its transaction has committed: that is known when the next
        # step starts, or when env.py returns. Until then it waits here.
        self.pending: tuple[StepResult, tuple[str, ...]] | None = None

    def flush(self) -> None:
        """The pending step has committed: count it and report it."""
        if self.pending is None:
            return
        result, self.heads = self.pending
        self.pending = None
        self.done.append(result)
        emit(self.on_event, Event("step_done", revision=result.revision, message=result.message,
                                  direction=result.direction, attempt=result.attempts,
                                  duration=result.duration))

    def start(self, step: Any) -> None:
        self.flush()
        self.current = step
        self.started = bridge.now()
        info = bridge.step_of(step.info)
        if self.direction == "downgrade" and not step.info.is_stamp:
            self.project.check_downgradable(info.revision)
        attempt = self.attempts.setdefault(info.revision, 1)
        emit(self.on_event, Event("step_start", revision=info.revision, message=info.message,
                                  direction=info.direction, attempt=attempt))

    def applied(self, ctx: Any, step: Any, heads: Any, run_args: Any,
                note: str | None = None) -> None:
        """Write the step's history row in its own transaction; ``note``: what the
        earlier attempts met (lock timeouts and who blocked them), kept in ``error``."""
        info = bridge.step_of(step)
        finished = bridge.now()
        direction = "stamp" if step.is_stamp else info.direction
        attempts = self.attempts.get(info.revision, 1)
        history.record(
            ctx.connection,
            self.settings.history_table,
            revision=info.revision,
            down_revision=info.down_revision,
            direction=direction,
            message=info.message,
            started_at=self.started or finished,
            finished_at=finished,
            attempts=attempts,
            outcome="success",
            error=note[:2000] if note else None,
            checksum=self.project.checksum(info.revision) if direction == "upgrade" else None,
        )
        result = StepResult(info.revision, info.down_revision, direction, info.message,
                            self.started or finished, finished, attempts)
        self.pending = (result, tuple(sorted(heads)))

    def current_info(self) -> bridge.Step | None:
        return bridge.step_of(self.current.info) if self.current is not None else None


def migrate(
    settings: Settings,
    project: bridge.Project,
    direction: str,
    target: str,
    *,
    on_event: EventHandler | None = None,
    purge: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> MigrateResult:
    """Upgrade, downgrade or stamp to ``target`` under the migrator lock."""
    url = settings.require_database_url()
    result = MigrateResult(direction=direction, target=target)
    began = time.monotonic()

    def waiting(holder: LockHolder | None, waited: float) -> None:
        emit(on_event, Event("lock_wait", holder=holder.describe() if holder else None,
                             waited=waited))

    with migrator_lock(url, settings.lock_wait, on_wait=waiting):
        result.lock_waited_s = time.monotonic() - began
        emit(on_event, Event("lock_acquired", waited=result.lock_waited_s))
        with connect(url) as conn:
            set_timeouts(conn, settings.lock_timeout, settings.statement_timeout)
            group_commits(conn)
            try:
                _run_with_retries(settings, project, conn, direction, target, result,
                                  on_event=on_event, purge=purge, sleep=sleep)
            finally:
                make_durable(conn)
    result.duration_s = time.monotonic() - began
    return result


def group_commits(conn: Connection) -> None:
    """Commit each revision without waiting for its WAL flush; see :func:`make_durable`.

    One transaction per revision means one WAL flush per revision, which on a long
    history costs more than the migrations themselves. With ``synchronous_commit = off``
    a server crash can lose only the last few revision commits, each whole (schema change,
    version stamp and history row together), so the database is at an earlier revision
    and a rerun completes; nothing is half applied. :func:`make_durable` then flushes
    once before umbau reports anything.
    """
    conn.exec_driver_sql("SET synchronous_commit = off")
    conn.commit()


def make_durable(conn: Connection) -> None:
    """Wait until every revision committed so far is flushed to disk.

    A synchronous commit of a transaction with a transaction id waits for the WAL up to
    its commit record, which lies after every earlier commit of this session.
    """
    with contextlib.suppress(Exception):  # the session may be gone: nothing to report then
        if conn.in_transaction():
            conn.rollback()
        conn.exec_driver_sql("SET synchronous_commit = on")
        conn.exec_driver_sql("SELECT txid_current()")
        conn.commit()


def _fn_for(project: bridge.Project, direction: str, target: str) -> Any:
    if direction == "upgrade":
        return bridge.upgrade_fn(project, target)
    if direction == "downgrade":
        return bridge.downgrade_fn(project, target)
    return bridge.stamp_fn(project, target)


# duplicate_table, duplicate_column, duplicate_object, duplicate_schema (PostgreSQL docs,
# Appendix A "PostgreSQL Error Codes")
_ALREADY_EXISTS = frozenset({"42P07", "42701", "42710", "42P06"})

# psycopg's status of statements that change nothing durable when run outside a transaction
_HARMLESS = ("SELECT", "SHOW", "SET", "RESET")


class _TransactionWatch:
    """Notices a step that leaves its transaction, and what it made durable meanwhile.

    Alembic runs each revision in one transaction and stamps the version inside it; a
    revision that commits half way (``op.get_bind().commit()``, ``op.execute("COMMIT")``,
    an ``autocommit_block``) makes its first part durable while the stamp still waits.
    SQLAlchemy's ``commit`` event and psycopg's status message of each statement tell
    exactly when that happens, at no cost to the server.
    """

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.commits = 0
        self.open: list[str] = []  # statements of the transaction in progress
        self.durable: list[str] = []  # statements committed during the step
        self._hooks: list[tuple[str, Callable[..., None]]] = [
            ("commit", self._on_commit), ("rollback", self._on_rollback),
            ("after_cursor_execute", self._on_execute)]

    def __enter__(self) -> _TransactionWatch:
        for name, hook in self._hooks:
            sa.event.listen(self.conn, name, hook)
        return self

    def __exit__(self, *exc: object) -> None:
        for name, hook in self._hooks:
            sa.event.remove(self.conn, name, hook)

    def reset(self) -> None:
        self.commits = 0
        self.open = []
        self.durable = []

    @property
    def left_transaction(self) -> bool:
        return self.commits > 0

    def _on_commit(self, conn: Connection) -> None:
        self.commits += 1
        self.durable.extend(self.open)
        self.open = []

    def _on_rollback(self, conn: Connection) -> None:
        self.open = []

    def _on_execute(self, conn: Connection, cursor: Any, statement: str, *args: Any) -> None:
        status = str(getattr(cursor, "statusmessage", "") or "")
        if status.startswith(("COMMIT", "ROLLBACK")):  # a COMMIT sent as SQL
            self._on_commit(conn) if status.startswith("COMMIT") else self._on_rollback(conn)
        elif conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
            self.commits += 1  # a statement outside any transaction: durable at once
            if not status.startswith(_HARMLESS):
                self.durable.append(statement)
        else:
            self.open.append(statement)


@dataclass
class _Failure:
    """One failed attempt of a step, as the runner decides what to do about it."""

    exc: Exception
    step: bridge.Step | None
    attempts: int
    code: str | None
    reason: str

    @property
    def revision(self) -> str | None:
        return self.step.revision if self.step else None

    @property
    def retryable(self) -> bool:
        return self.code in RETRYABLE_SQLSTATES and self.step is not None


class _Run:
    """One migrate() call: runs env.py, and on each failure retries, cleans up or raises."""

    def __init__(self, settings: Settings, project: bridge.Project, conn: Connection,
                 direction: str, result: MigrateResult, on_event: EventHandler | None,
                 sleep: Callable[[float], None]) -> None:
        self.settings = settings
        self.project = project
        self.conn = conn
        self.direction = direction
        self.result = result
        self.on_event = on_event
        self.sleep = sleep
        self.recorder = _StepRecorder(project, settings, direction, on_event)
        self.watch = _TransactionWatch(conn)
        self.blockers: BlockerWatch | None = None
        self.seen_blockers: dict[str, list[str]] = {}  # revision -> what blocked each retry
        self.invalid_before: set[str] = set()
        self.to_drop: list[str] = []  # invalid indexes a failed attempt left behind
        self.first = True

    def migration_fn(self, target: str) -> Callable[[tuple[str, ...], Any], Any]:
        inner = _fn_for(self.project, self.direction, target)

        def fn(rev: tuple[str, ...], context: Any) -> Any:
            # Created here, after env.py has accepted umbau's connection, in the same
            # transaction as the version table and the first step: a refused or
            # rolled-back run leaves nothing behind (hence on every attempt).
            history.ensure_table(context.connection, self.settings.history_table)
            steps = list(inner(rev, context))
            if self.first:
                self.result.before = tuple(rev)
                self.first = False
                self.refuse_partial(context.connection, steps)
            emit(self.on_event, Event("plan", total=len(steps), direction=self.direction))
            return bridge.iter_steps(steps, self.step_starts)

        return fn

    def report_failure(self, exc: UmbauError) -> None:
        """Event ``step_failed`` for a step that failed for good (retries spent, rolled
        back, partial, irreversible, an ops helper's refusal): ``error`` its one-line
        message, ``data["error_type"]`` the UmbauError class. Errors before any step
        (a refused partial revision, env.py) name no step and emit nothing."""
        step = self.recorder.current_info()
        if step is None:
            return
        emit(self.on_event, Event("step_failed", revision=step.revision,
                                  direction=self.direction, message=step.message,
                                  attempt=self.recorder.attempts.get(step.revision, 1),
                                  error=str(exc), data={"error_type": type(exc).__name__}))

    def refuse_partial(self, conn: Connection, steps: list[Any]) -> None:
        """A pending revision whose last run was ``partial`` is not rerun blindly: what
        it committed would run twice (``--retry-partial`` after undoing it by hand)."""
        if self.direction == "stamp" or retry_partial(self.settings) or not steps:
            return
        revisions = [bridge.step_of(s.info).revision for s in steps]
        for revision, finished in last_partial(conn, self.settings.history_table,
                                               revisions, self.direction):
            raise PartiallyApplied(
                f"revision {revision} was partially applied on {finished:%Y-%m-%d %H:%M} "
                "(`umbau history --runs` shows what it committed): a rerun would repeat "
                f"that part; finish it by hand and `umbau stamp {revision}`, or undo the "
                "committed part and rerun with --retry-partial", revision, 0)

    def step_starts(self, step: Any) -> None:
        self.recorder.start(step)
        self.watch.reset()
        if self.blockers is not None:
            self.blockers.step_started()

    def once(self, fn: Callable[[tuple[str, ...], Any], Any], purge: bool) -> None:
        """Run env.py once to the target; raises what the failed step raised."""
        self.recorder.current = None
        bridge.run_env(self.project, fn, connection=self.conn,
                       on_version_apply=[self.applied], purge=purge)
        if self.conn.in_transaction():
            self.conn.commit()  # env.py ran everything in one outer transaction
        self.recorder.flush()
        self.result.steps = self.recorder.done
        self.result.after = self.recorder.heads if self.recorder.heads is not None \
            else self.result.before

    def applied(self, ctx: Any, step: Any, heads: Any, run_args: Any) -> None:
        revision = bridge.step_of(step).revision
        self.recorder.applied(ctx, step, heads, run_args,
                              note="; ".join(self.seen_blockers.pop(revision, [])) or None)

    def failure(self, exc: Exception) -> _Failure:
        if self.recorder.pending is not None:
            # its own commit failed: it is the failed step, and it did not leave its
            # transaction (the commit event fires before the commit is tried)
            self.recorder.pending = None
            self.watch.reset()
        step = self.recorder.current_info()
        attempts = self.recorder.attempts.get(step.revision, 1) if step else 1
        return _Failure(exc, step, attempts, sqlstate(exc), self.describe(exc))

    def describe(self, exc: BaseException) -> str:
        """PostgreSQL's message with DETAIL and HINT, and the revision file and line."""
        where = bridge.revision_location(exc, self.project.script)
        text_ = describe_error(exc)
        return f"{text_} at {where[0]}:{where[1]}" if where else text_

    def handle(self, failure: _Failure) -> None:
        """Return to retry the step; otherwise record the failure and raise."""
        if self.watch.left_transaction:
            self.clean_up_left_transaction(failure)
        blocked = self.blocked_by(failure)
        if failure.retryable:
            if failure.attempts <= self.settings.retries:
                self.retry(failure, blocked)
                return
            self.record(failure, "failed", blocked)
            raise RetriesExhausted(
                f"revision {failure.revision} failed after {failure.attempts} attempts "
                f"({self.settings.retries} retries): {failure.reason}"
                f"{'; blocked by ' + blocked if blocked else ''}; stop the blocking "
                "session, or raise lock_timeout/retries", failure.revision, failure.attempts,
            ) from failure.exc
        self.record(failure, "failed", blocked)
        raise self.final_error(failure) from failure.exc

    def final_error(self, failure: _Failure) -> UmbauError:
        revision = failure.revision
        if isinstance(failure.exc, NotImplementedError) and self.direction == "downgrade" \
                and revision:
            return IrreversibleRevision(
                f"revision {revision} cannot be downgraded: "
                f"{failure.exc or 'NotImplementedError'}", revision)
        where = f"revision {revision}" if revision else "env.py"
        advice = "fix it and rerun"
        if failure.code in _ALREADY_EXISTS and not self.result.before:
            advice = ("the database has no version table but already has this schema: "
                      "run `umbau baseline` to find and stamp its revision")
        return MigrationFailed(f"{where} failed and was rolled back: {failure.reason}; "
                               f"{advice}", revision, failure.attempts)

    def blocked_by(self, failure: _Failure) -> str | None:
        """Who blocked the step (seen while it waited), for lock timeouts only."""
        if failure.code != LOCK_NOT_AVAILABLE or self.blockers is None:
            return None
        seen = self.blockers.take()
        if not seen:
            return None
        self.maybe_cancel(failure, seen)
        return describe_all(seen)

    def maybe_cancel(self, failure: _Failure, seen: list[Blocker]) -> None:
        """``--cancel-blockers N``: pg_cancel_backend the blockers after N retries."""
        after = cancel_blockers_after(self.settings)
        if after is None or failure.attempts < after or failure.attempts > self.settings.retries:
            return
        with connect(self.settings.require_database_url(), autocommit=True) as conn:
            done = cancel(conn, [b.pid for b in seen])
        if done:
            emit(self.on_event, Event("blockers_cancelled", revision=failure.revision,
                                      holder=", ".join(f"pid {p}" for p in done)))

    def retry(self, failure: _Failure, blocked: str | None) -> None:
        self.pause(failure, blocked)
        self.drop_left_over(failure)

    def pause(self, failure: _Failure, blocked: str | None) -> None:
        """Count the failed attempt, report it, and wait the backoff delay."""
        assert failure.revision is not None
        delay = backoff_delay(failure.attempts, self.settings)
        self.result.retries += 1
        note = f"attempt {failure.attempts}: {failure.reason}"
        self.seen_blockers.setdefault(failure.revision, []).append(
            f"{note}; blocked by {blocked}" if blocked else note)
        emit(self.on_event, Event("retry", revision=failure.revision, attempt=failure.attempts,
                                  delay=delay, error=failure.reason, holder=blocked))
        self.recorder.attempts[failure.revision] = failure.attempts + 1
        self.sleep(delay)

    def clean_up_left_transaction(self, failure: _Failure) -> None:
        """A step that committed half way: undo what can be proven safe, else stop.

        Provably safe: nothing but the failed statement ran outside the step's
        transaction, so the only leftover is the invalid index that a failed
        ``CREATE INDEX CONCURRENTLY`` leaves behind (PostgreSQL docs, CREATE INDEX,
        "Building Indexes Concurrently"): dropped concurrently, the step is as if it
        never ran. Anything else committed: record ``partial`` and raise.
        """
        left = sorted(self.invalid_indexes() - self.invalid_before)
        if self.watch.durable:
            commands = [_drop_sql(name) + ";" for name in left]
            self.record(failure, "partial", None, committed=self.watch.durable)
            raise PartiallyApplied(_partial_message(failure, self.watch.durable, commands),
                                   failure.revision or "?", failure.attempts,
                                   self.watch.durable) from failure.exc
        self.to_drop = left
        if not failure.retryable:
            self.drop_left_over_once(failure)

    def drop_left_over_once(self, failure: _Failure) -> None:
        """Drop the invalid indexes now; if that fails too, say how to do it by hand."""
        try:
            self.drop_indexes()
        except Exception as exc:
            commands = " ".join(_drop_sql(name) + ";" for name in self.to_drop)
            self.record(failure, "failed", None)
            raise MigrationFailed(
                f"revision {failure.revision} failed ({failure.reason}) and left invalid "
                f"indexes that umbau could not drop ({describe_error(exc)}): run {commands} "
                "then rerun", failure.revision, failure.attempts) from failure.exc

    def drop_left_over(self, failure: _Failure) -> None:
        """Before a retry: drop the invalid indexes the failed attempt left, retrying the
        drop (it waits for the same old transactions) within the same retry budget."""
        while self.to_drop:
            try:
                self.drop_indexes()
            except Exception as exc:
                if sqlstate(exc) != LOCK_NOT_AVAILABLE:
                    raise
                again = _Failure(exc, failure.step, self.recorder.attempts[failure.revision or ""],
                                 LOCK_NOT_AVAILABLE, describe_error(exc))
                if again.attempts > self.settings.retries:
                    self.handle(again)  # raises RetriesExhausted
                self.pause(again, self.blocked_by(again))

    def invalid_indexes(self) -> set[str]:
        with connect(self.settings.require_database_url()) as conn:
            return invalid_indexes(conn)

    def drop_indexes(self) -> None:
        with connect(self.settings.require_database_url(), autocommit=True) as conn:
            set_timeouts(conn, self.settings.lock_timeout, self.settings.statement_timeout)
            while self.to_drop:
                conn.exec_driver_sql(_drop_sql(self.to_drop[0]))
                emit(self.on_event, Event("invalid_index_dropped", message=self.to_drop[0]))
                self.to_drop.pop(0)

    def record(self, failure: _Failure, outcome: str, blocked: str | None,
               committed: list[str] | None = None) -> None:
        if failure.step is None:
            return
        parts = [*self.seen_blockers.pop(failure.step.revision, []), failure.reason]
        if blocked:
            parts.append(f"blocked by {blocked}")
        if committed:
            parts.append(f"committed before the failure: {'; '.join(committed)}")
        _record_failure(self.conn, self.settings, self.recorder, failure.step,
                        failure.attempts, outcome, " | ".join(parts))


def _drop_sql(index: str) -> str:
    return f"DROP INDEX CONCURRENTLY IF EXISTS {index}"


def _partial_message(failure: _Failure, committed: list[str], commands: list[str]) -> str:
    shown = "; ".join(" ".join(s.split())[:80] for s in committed[:3])
    more = f" and {len(committed) - 3} more" if len(committed) > 3 else ""
    drops = f"; {' '.join(commands)}" if commands else ""
    rev = failure.revision
    return (f"revision {rev} left its transaction and then failed: {failure.reason}; "
            f"already committed: {shown}{more}; it was not retried: finish it by hand, "
            f"either run the rest of its upgrade() and `umbau stamp {rev}`, or undo the "
            f"committed part{drops} and rerun with --retry-partial (`umbau history --runs` "
            "shows it)")


def retry_budget(settings: Settings) -> float:
    """Seconds a revision may spend waiting for locks before umbau gives up: every
    attempt's ``lock_timeout`` plus the longest backoff delays between them."""
    base, cap = settings.backoff_base or 0.0, settings.backoff_max or 0.0
    delays = sum(min(base * 2 ** i, cap or base * 2 ** i) for i in range(settings.retries))
    return float((settings.retries + 1) * (settings.lock_timeout or 0.0) + delays)


def warn_old_lock_holders(settings: Settings, tables: Iterable[str],
                          on_event: EventHandler | None,
                          connection: Connection | None = None) -> list[Blocker]:
    """Before an upgrade: sessions whose transaction is older than the whole retry budget
    and that hold a lock on a table the pending revisions alter. Such a session will
    outlast every retry; it is reported (event ``old_lock_holders``), never touched.
    ``connection``: an open session to ask on (the upgrade plan's), else a new one."""
    names = list(tables)
    if not names or not settings.lock_timeout:
        return []
    budget = retry_budget(settings)
    if connection is not None:
        found = old_lock_holders(connection, names, budget)
    else:
        with connect(settings.require_database_url(), autocommit=True) as conn:
            found = old_lock_holders(conn, names, budget)
    if found:
        emit(on_event, Event("old_lock_holders", message=(
            f"{describe_all(found)} has held a lock on a table this upgrade alters for "
            f"longer than the whole retry budget ({budget:.0f}s): the upgrade will likely "
            "fail on lock timeouts; end that transaction first")))
    return found


def last_partial(conn: Connection, table: str, revisions: list[str],
                 direction: str) -> list[tuple[str, datetime]]:
    """Those of ``revisions`` whose last ``direction`` run was recorded ``partial``."""
    name = parse_qualified(table).sql.replace("%", "%%")
    rows = conn.exec_driver_sql(
        f"SELECT DISTINCT ON (revision) revision, outcome, finished_at FROM {name} "
        "WHERE direction = %(d)s AND revision = ANY(%(r)s) ORDER BY revision, id DESC",
        {"d": direction, "r": revisions})
    return [(r[0], r[2]) for r in rows if r[1] == "partial"]


def retry_partial(settings: Settings) -> bool:
    """``--retry-partial`` (``[tool.umbau.upgrade] retry_partial``): rerun a revision
    recorded ``partial``, once its committed part has been undone by hand."""
    return bool(settings.section("upgrade").get("retry_partial", False))


def cancel_blockers_after(settings: Settings) -> int | None:
    """``[tool.umbau.upgrade] cancel_blockers_after`` (``--cancel-blockers N``): None = never."""
    value = settings.section("upgrade").get("cancel_blockers_after")
    return None if value is None else int(value)


def _run_with_retries(
    settings: Settings,
    project: bridge.Project,
    conn: Connection,
    direction: str,
    target: str,
    result: MigrateResult,
    *,
    on_event: EventHandler | None,
    purge: bool,
    sleep: Callable[[float], None],
) -> None:
    run = _Run(settings, project, conn, direction, result, on_event, sleep)
    fn = run.migration_fn(target)
    with contextlib.ExitStack() as stack:
        stack.enter_context(run.watch)
        run.blockers = _blocker_watch(settings, conn, stack)
        run.invalid_before = invalid_indexes(conn)
        conn.commit()
        try:
            while True:
                try:
                    run.once(fn, purge)
                    return
                except UmbauError:
                    _rollback(conn)
                    raise
                except Exception as exc:
                    _rollback(conn)
                    run.handle(run.failure(exc))
        except UmbauError as exc:
            run.report_failure(exc)
            raise


def _blocker_watch(settings: Settings, conn: Connection,
                   stack: contextlib.ExitStack) -> BlockerWatch | None:
    """A watch over the migration connection, when lock timeouts can happen at all."""
    if not settings.lock_timeout or not settings.retries:
        return None
    pid = conn.connection.dbapi_connection.info.backend_pid  # type: ignore[union-attr]
    # from a quarter of lock_timeout on: early enough to see the wait before it times out
    watch = BlockerWatch(settings.require_database_url(), pid, settings.lock_timeout / 4)
    return stack.enter_context(watch)


def invalid_indexes(conn: Connection) -> set[str]:
    """The invalid indexes (``pg_index.indisvalid``) as quoted ``schema.name``."""
    return {f"{quote_ident(i.schema)}.{quote_ident(i.name)}"
            for i in catalog.invalid_indexes(conn)}


def _rollback(conn: Connection) -> None:
    try:
        if conn.in_transaction():
            conn.rollback()
    except Exception:
        pass


def _record_failure(conn: Connection, settings: Settings, recorder: _StepRecorder,
                    step: bridge.Step, attempts: int, outcome: str, error: str) -> None:
    try:
        history.record(
            conn, settings.history_table,
            revision=step.revision, down_revision=step.down_revision,
            direction=recorder.direction, message=step.message,
            started_at=recorder.started or bridge.now(), finished_at=bridge.now(),
            attempts=attempts, outcome=outcome, error=error[:2000],
            checksum=recorder.project.checksum(step.revision),
        )
        conn.commit()
    except Exception:
        _rollback(conn)
