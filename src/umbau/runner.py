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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from umbau import alembic_bridge as bridge
from umbau.errors import (
    IrreversibleRevision,
    MigrationFailed,
    RetriesExhausted,
    UmbauError,
)
from umbau.events import Event, EventHandler, emit
from umbau.postgres import history
from umbau.postgres.connect import RETRYABLE_SQLSTATES, connect, set_timeouts, sqlstate
from umbau.postgres.locks import LockHolder, migrator_lock
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

    def applied(self, ctx: Any, step: Any, heads: Any, run_args: Any) -> None:
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
    recorder = _StepRecorder(project, settings, direction, on_event)
    inner = _fn_for(project, direction, target)
    first = True

    def fn(rev: tuple[str, ...], context: Any) -> Any:
        nonlocal first
        # Created here, after env.py has accepted umbau's connection, in the same
        # transaction as the version table and the first step: a refused or rolled-back
        # run leaves nothing behind (hence on every attempt).
        history.ensure_table(context.connection, settings.history_table)
        if first:
            result.before = tuple(rev)
            first = False
        steps = list(inner(rev, context))
        emit(on_event, Event("plan", total=len(steps), direction=direction))
        return bridge.iter_steps(steps, recorder.start)

    while True:
        recorder.current = None
        try:
            bridge.run_env(project, fn, connection=conn, on_version_apply=[recorder.applied],
                           purge=purge)
            if conn.in_transaction():
                conn.commit()  # env.py ran everything in one outer transaction
            recorder.flush()
            result.steps = recorder.done
            result.after = recorder.heads if recorder.heads is not None else result.before
            return
        except UmbauError:
            _rollback(conn)
            raise
        except Exception as exc:
            _rollback(conn)
            if recorder.pending is not None:  # its commit failed: it is the failed step
                recorder.pending = None
            step = recorder.current_info()
            revision = step.revision if step else None
            attempts = recorder.attempts.get(revision, 1) if revision else 1
            code = sqlstate(exc)
            if code in RETRYABLE_SQLSTATES and revision is not None:
                if attempts <= settings.retries:
                    delay = backoff_delay(attempts, settings)
                    result.retries += 1
                    emit(on_event, Event("retry", revision=revision, attempt=attempts,
                                         delay=delay, error=_reason(exc, code)))
                    recorder.attempts[revision] = attempts + 1
                    sleep(delay)
                    continue
                _record_failure(conn, settings, recorder, step, attempts, exc)
                raise RetriesExhausted(
                    f"revision {revision} failed after {attempts} attempts "
                    f"({settings.retries} retries): {_reason(exc, code)}; find the blocking "
                    "session in pg_stat_activity, or raise lock_timeout/retries",
                    revision, attempts,
                ) from exc
            _record_failure(conn, settings, recorder, step, attempts, exc)
            if isinstance(exc, NotImplementedError) and direction == "downgrade" and revision:
                raise IrreversibleRevision(
                    f"revision {revision} cannot be downgraded: {exc or 'NotImplementedError'}",
                    revision,
                ) from exc
            where = f"revision {revision}" if revision else "env.py"
            raise MigrationFailed(
                f"{where} failed and was rolled back: {_reason(exc, code)}; fix it and rerun",
                revision, attempts,
            ) from exc


def _reason(exc: BaseException, code: str | None) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip().splitlines()
    first = text[0] if text else type(exc).__name__
    if code == "55P03":
        return f"lock timeout ({first})"
    if code == "40P01":
        return f"deadlock ({first})"
    if orig is None and not isinstance(exc, sa.exc.SQLAlchemyError):
        return f"{type(exc).__name__}: {first}"
    return first


def _rollback(conn: Connection) -> None:
    try:
        if conn.in_transaction():
            conn.rollback()
    except Exception:
        pass


def _record_failure(conn: Connection, settings: Settings, recorder: _StepRecorder,
                    step: bridge.Step | None, attempts: int, exc: BaseException) -> None:
    if step is None:
        return
    try:
        history.record(
            conn, settings.history_table,
            revision=step.revision, down_revision=step.down_revision,
            direction=recorder.direction, message=step.message,
            started_at=recorder.started or bridge.now(), finished_at=bridge.now(),
            attempts=attempts, outcome="failed", error=_reason(exc, sqlstate(exc))[:2000],
            checksum=recorder.project.checksum(step.revision),
        )
        conn.commit()
    except Exception:
        _rollback(conn)
