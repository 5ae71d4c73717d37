"""The state of fleet runs in the control database: ``umbau_fleet_runs`` (one row per
run) and ``umbau_fleet_targets`` (one row per target of a run, with its worker lease).

A worker claims a target with ``SELECT … FOR UPDATE SKIP LOCKED``. A target is free
when it is pending, or when it is running but its lease has expired or its owner's
server session is gone (a killed worker's connection ends with it, so its target is
free at once; the lease covers owners whose session lingers, and live workers renew it).

Canary targets are claimed first; the others only once every canary is done, so a failed
canary stops the run on every machine. A worker also holds a shared session advisory
lock on its run for as long as it works on it: a run whose lock nobody holds has no
live worker, which is how a second operator's ``fleet upgrade`` tells a run in progress
from one that was abandoned.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from umbau.errors import DatabaseError, UsageError
from umbau.fleet.targets import Target, stored_url
from umbau.postgres.connect import APPLICATION_NAME, normalize_url, translate_connect_error

TARGET_STATES = ("pending", "running", "done", "failed", "skipped")

DDL = """
CREATE TABLE IF NOT EXISTS umbau_fleet_runs (
    run_id           text PRIMARY KEY,
    lock_key         serial NOT NULL UNIQUE,
    kind             text NOT NULL DEFAULT 'upgrade' CHECK (kind IN ('upgrade', 'backfill')),
    target_revision  text,
    backfill         text,
    state            text NOT NULL DEFAULT 'running'
                         CHECK (state IN ('running', 'done', 'failed')),
    max_failures     int,
    created_by       text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz
);
CREATE TABLE IF NOT EXISTS umbau_fleet_targets (
    run_id           text NOT NULL REFERENCES umbau_fleet_runs ON DELETE CASCADE,
    position         int NOT NULL,
    name             text NOT NULL,
    url              text NOT NULL,
    tags             text[] NOT NULL DEFAULT '{}',
    canary           boolean NOT NULL DEFAULT false,
    state            text NOT NULL DEFAULT 'pending' CHECK (state IN
                         ('pending', 'running', 'done', 'failed', 'skipped')),
    before_revision  text,
    after_revision   text,
    steps            int,
    rows             bigint,
    error            text,
    exit_code        int,
    attempts         int NOT NULL DEFAULT 0,
    owner            text,
    owner_pid        int,
    owner_started    timestamptz,
    lease_expires    timestamptz,
    started_at       timestamptz,
    finished_at      timestamptz,
    PRIMARY KEY (run_id, name)
);
"""
# control databases of the first fleet version (upgrades only); run only when needed:
# ALTER TABLE takes an ACCESS EXCLUSIVE lock even when there is nothing to add
UPGRADE_DDL = """
ALTER TABLE umbau_fleet_runs ADD COLUMN IF NOT EXISTS kind text NOT NULL DEFAULT 'upgrade';
ALTER TABLE umbau_fleet_runs ADD COLUMN IF NOT EXISTS backfill text;
ALTER TABLE umbau_fleet_runs ALTER COLUMN target_revision DROP NOT NULL;
ALTER TABLE umbau_fleet_targets ADD COLUMN IF NOT EXISTS rows bigint;
"""

# Two int4 keys for advisory locks: 'umbf' and 0 for "create tables / create a run";
# ('umbf', lock_key of the run) is held shared by each worker of that run.
LOCK_CLASS = 0x756D6266
_CREATE_LOCK = (LOCK_CLASS, 0)

_FREE = """(t.state = 'pending' OR (t.state = 'running' AND (t.lease_expires < now()
           OR NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = t.owner_pid
                          AND a.backend_start = t.owner_started))))"""


def conninfo(url: str) -> str:
    """A libpq connection string for ``url`` (SQLAlchemy-style URLs accepted)."""
    parsed = normalize_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def control(url: str) -> Iterator[psycopg.Connection]:
    """An autocommit psycopg connection to the control database, closed afterwards.

    psycopg rather than SQLAlchemy: claims need explicit transactions and row locks.
    Connection failures become :class:`~umbau.errors.DatabaseError` subclasses.
    """
    try:
        conn = psycopg.connect(conninfo(url), autocommit=True, connect_timeout=10,
                               application_name=f"{APPLICATION_NAME} fleet"[:63])
    except psycopg.OperationalError as exc:
        raise translate_connect_error(exc, normalize_url(url)) from exc
    try:
        yield conn
    finally:
        conn.close()


def ensure_tables(conn: psycopg.Connection) -> None:
    """Create the state tables once (and add what later versions need); concurrent first
    runs serialize on an advisory lock."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", _CREATE_LOCK)
        conn.execute(DDL)
        current = conn.execute(
            """SELECT count(*) FROM information_schema.columns
               WHERE table_schema = current_schema() AND (table_name, column_name) IN
                     (('umbau_fleet_runs', 'kind'), ('umbau_fleet_targets', 'rows'))"""
        ).fetchone()
        if current is None or current[0] < 2:
            conn.execute(UPGRADE_DDL)


@dataclass(frozen=True)
class Task:
    """What a run does on every target: ``upgrade`` to ``subject`` (a revision), or
    ``backfill`` ``subject`` (a backfill's ``module:attribute``)."""

    kind: str
    subject: str

    @property
    def command(self) -> str:
        """The command that runs (or joins) such a run, without its options."""
        if self.kind == "backfill":
            return f"umbau fleet backfill {self.subject}"
        return "umbau fleet upgrade"


@dataclass
class Run:
    """One row of ``umbau_fleet_runs``."""

    run_id: str
    lock_key: int
    kind: str
    target_revision: str | None
    backfill: str | None
    state: str
    max_failures: int | None
    created_by: str
    created_at: datetime
    finished_at: datetime | None

    @property
    def task(self) -> Task:
        return Task(self.kind, (self.backfill if self.kind == "backfill"
                                else self.target_revision) or "head")

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "kind": self.kind, "backfill": self.backfill,
                "target_revision": self.target_revision,
                "state": self.state, "max_failures": self.max_failures,
                "created_by": self.created_by, "created_at": self.created_at.isoformat(),
                "finished_at": self.finished_at.isoformat() if self.finished_at else None}


_RUN_COLUMNS = """run_id, lock_key, kind, target_revision, backfill, state, max_failures,
    created_by, created_at, finished_at"""


def load_run(conn: psycopg.Connection, run_id: str | None) -> Run | None:
    """A run by id, or the newest run when ``run_id`` is None; None when there is none."""
    exists = conn.execute("SELECT to_regclass('umbau_fleet_runs')").fetchone()
    if not exists or exists[0] is None:
        return None
    if run_id is None:
        row = conn.execute(f"SELECT {_RUN_COLUMNS} FROM umbau_fleet_runs "
                           "ORDER BY created_at DESC LIMIT 1").fetchone()
    else:
        row = conn.execute(f"SELECT {_RUN_COLUMNS} FROM umbau_fleet_runs WHERE run_id = %s",
                           (run_id,)).fetchone()
    return Run(*row) if row else None


def active_run(conn: psycopg.Connection) -> str | None:
    """A run still marked running that some live worker holds (see the module docstring)."""
    row = conn.execute(
        """SELECT r.run_id FROM umbau_fleet_runs r
           WHERE r.state = 'running' AND EXISTS (
               SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted
                 AND l.database = (SELECT oid FROM pg_database
                                   WHERE datname = current_database())
                 AND l.classid = %s::bigint::oid AND l.objid = r.lock_key::oid
                 AND l.objsubid = 2)
           ORDER BY r.created_at LIMIT 1""", (LOCK_CLASS,)).fetchone()
    return str(row[0]) if row else None


@contextmanager
def creating(conn: psycopg.Connection) -> Iterator[None]:
    """A transaction in which runs are created one at a time (two operators at once)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", _CREATE_LOCK)
        yield


def create_run(conn: psycopg.Connection, run_id: str, task: Task,
               targets: Sequence[Target], canaries: Sequence[str],
               max_failures: int | None, created_by: str) -> Run:
    """Insert a run with its targets (in the caller's transaction, see :func:`creating`)."""
    revision = task.subject if task.kind == "upgrade" else None
    backfill = task.subject if task.kind == "backfill" else None
    row = conn.execute(
        f"""INSERT INTO umbau_fleet_runs (run_id, kind, target_revision, backfill,
                                          max_failures, created_by)
            VALUES (%s, %s, %s, %s, %s, %s) RETURNING {_RUN_COLUMNS}""",
        (run_id, task.kind, revision, backfill, max_failures, created_by)).fetchone()
    assert row is not None
    with conn.cursor() as cur:
        cur.executemany(
            """INSERT INTO umbau_fleet_targets (run_id, position, name, url, tags, canary)
               VALUES (%s, %s, %s, %s, %s, %s)""",
            [(run_id, i, t.name, stored_url(t.url), list(t.tags), t.name in canaries)
             for i, t in enumerate(targets)])
    return Run(*row)


def join(conn: psycopg.Connection, run: Run) -> None:
    """Mark this session as a live worker of ``run`` (released when the session ends)."""
    conn.execute("SELECT pg_advisory_lock_shared(%s, %s)", (LOCK_CLASS, run.lock_key))


def leave(conn: psycopg.Connection, run: Run) -> None:
    conn.execute("SELECT pg_advisory_unlock_shared(%s, %s)", (LOCK_CLASS, run.lock_key))


def reopen(conn: psycopg.Connection, run_id: str, *, retry_failed: bool) -> None:
    """A resumed run is running again; with ``retry_failed`` its failed and skipped
    targets are pending again."""
    conn.execute("UPDATE umbau_fleet_runs SET state = 'running', finished_at = NULL "
                 "WHERE run_id = %s AND (state <> 'running' OR %s)", (run_id, retry_failed))
    states = ["failed", "skipped"] if retry_failed else ["skipped"]
    conn.execute("""UPDATE umbau_fleet_targets SET state = 'pending', error = NULL,
                        exit_code = NULL WHERE run_id = %s AND state = ANY(%s)""",
                 (run_id, states))


@dataclass
class TargetRow:
    """One row of ``umbau_fleet_targets`` (``url`` without its password)."""

    position: int
    name: str
    url: str
    tags: list[str]
    canary: bool
    state: str
    before_revision: str | None
    after_revision: str | None
    steps: int | None
    rows: int | None
    error: str | None
    exit_code: int | None
    attempts: int
    owner: str | None
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.url, "tags": self.tags, "canary": self.canary,
                "state": self.state, "before": self.before_revision,
                "after": self.after_revision, "steps": self.steps, "rows": self.rows,
                "error": self.error,
                "exit_code": self.exit_code, "attempts": self.attempts, "owner": self.owner,
                "duration_s": None if self.duration is None else round(self.duration, 3)}


_TARGET_COLUMNS = """position, name, url, tags, canary, state, before_revision, after_revision,
    steps, rows, error, exit_code, attempts, owner, started_at, finished_at"""


def targets(conn: psycopg.Connection, run_id: str) -> list[TargetRow]:
    return [TargetRow(*r) for r in conn.execute(
        f"SELECT {_TARGET_COLUMNS} FROM umbau_fleet_targets WHERE run_id = %s "
        "ORDER BY position", (run_id,))]


_RETURNED = ", ".join(f"u.{column.strip()}" for column in _TARGET_COLUMNS.split(","))


def claim(conn: psycopg.Connection, run: Run, owner: str, lease: float) -> TargetRow | None:
    """Take a free target (canaries first, in order); None when none is free now, a
    canary failed or the failure budget is spent.

    One statement, so one round trip and one commit: the stop conditions and "every
    canary done" are uncorrelated subqueries that PostgreSQL evaluates once per claim
    (InitPlans), not once per candidate row.
    """
    got = conn.execute(
        f"""WITH pick AS (
                SELECT t.name FROM umbau_fleet_targets t
                WHERE t.run_id = %(run)s AND {_FREE}
                  AND (t.canary OR NOT EXISTS (
                        SELECT 1 FROM umbau_fleet_targets c
                        WHERE c.run_id = %(run)s AND c.canary AND c.state <> 'done'))
                  AND NOT EXISTS (
                        SELECT 1 FROM umbau_fleet_targets c
                        WHERE c.run_id = %(run)s AND c.canary AND c.state = 'failed')
                  AND (%(budget)s::int IS NULL OR (
                        SELECT count(*) FROM umbau_fleet_targets f
                        WHERE f.run_id = %(run)s AND f.state = 'failed')
                        < greatest(%(budget)s::int, 1))
                ORDER BY t.canary DESC, t.position
                LIMIT 1 FOR UPDATE OF t SKIP LOCKED)
            UPDATE umbau_fleet_targets u SET state = 'running', owner = %(owner)s,
                owner_pid = pg_backend_pid(),
                owner_started = (SELECT backend_start FROM pg_stat_activity
                                 WHERE pid = pg_backend_pid()),
                lease_expires = now() + make_interval(secs => %(lease)s),
                attempts = attempts + 1, started_at = now(), finished_at = NULL,
                error = NULL, exit_code = NULL
            FROM pick WHERE u.run_id = %(run)s AND u.name = pick.name
            RETURNING {_RETURNED}""",
        {"run": run.run_id, "owner": owner, "lease": lease,
         "budget": run.max_failures}).fetchone()
    return TargetRow(*got) if got else None


def renew(conn: psycopg.Connection, run_id: str, owner: str, lease: float) -> None:
    """Push the lease of this owner's running targets ``lease`` seconds ahead."""
    conn.execute("""UPDATE umbau_fleet_targets
                    SET lease_expires = now() + make_interval(secs => %s)
                    WHERE run_id = %s AND owner = %s AND state = 'running'""",
                 (lease, run_id, owner))


def finish(conn: psycopg.Connection, run_id: str, name: str, owner: str, *, state: str,
           before: str | None = None, after: str | None = None, steps: int | None = None,
           rows: int | None = None, error: str | None = None,
           exit_code: int | None = None) -> None:
    """Record a target's outcome, if this owner still holds it."""
    conn.execute(
        """UPDATE umbau_fleet_targets SET state = %s, before_revision = %s,
               after_revision = %s, steps = %s, rows = %s, error = %s, exit_code = %s,
               finished_at = now(), owner = NULL, owner_pid = NULL, lease_expires = NULL
           WHERE run_id = %s AND name = %s AND owner = %s AND state = 'running'""",
        (state, before, after, steps, rows, (error or "")[:2000] or None, exit_code, run_id,
         name, owner))


def release(conn: psycopg.Connection, run_id: str, owner: str) -> int:
    """Give back this owner's unfinished targets (a worker that stops); returns how many."""
    return conn.execute(
        """UPDATE umbau_fleet_targets SET state = 'pending', owner = NULL, owner_pid = NULL,
               lease_expires = NULL, started_at = NULL
           WHERE run_id = %s AND owner = %s AND state = 'running'""",
        (run_id, owner)).rowcount


@dataclass(frozen=True)
class Counts:
    """How many targets of a run are in each state."""

    pending: int = 0
    running: int = 0
    done: int = 0
    failed: int = 0
    skipped: int = 0
    canary_failed: int = 0

    @property
    def total(self) -> int:
        return self.pending + self.running + self.done + self.failed + self.skipped

    @property
    def finished(self) -> int:
        return self.done + self.failed + self.skipped

    def as_dict(self) -> dict[str, int]:
        return {"total": self.total, "done": self.done, "failed": self.failed,
                "skipped": self.skipped, "running": self.running, "pending": self.pending}


def counts(conn: psycopg.Connection, run_id: str) -> Counts:
    row = conn.execute(
        """SELECT count(*) FILTER (WHERE state = 'pending'),
                  count(*) FILTER (WHERE state = 'running'),
                  count(*) FILTER (WHERE state = 'done'),
                  count(*) FILTER (WHERE state = 'failed'),
                  count(*) FILTER (WHERE state = 'skipped'),
                  count(*) FILTER (WHERE state = 'failed' AND canary)
           FROM umbau_fleet_targets WHERE run_id = %s""", (run_id,)).fetchone()
    assert row is not None
    return Counts(*(int(v) for v in row))


def budget(max_failures: int | None, max_failure_rate: float | None, total: int) -> int | None:
    """The number of failures after which no new target starts (None: no limit).

    ``max_failure_rate`` is a fraction of the run's targets, rounded down:
    0.05 of 200 targets is 10.
    """
    limits = [n for n in (max_failures,
                          None if max_failure_rate is None
                          else math.floor(max_failure_rate * total + 1e-9)) if n is not None]
    return min(limits) if limits else None


def settle(conn: psycopg.Connection, run: Run) -> tuple[Counts, str | None]:
    """Skip what can no longer start, and close the run when nothing is left.

    Returns the counts and why targets were skipped (None when none were). Pending
    targets are skipped when a canary failed or the failure budget is spent.
    """
    with conn.transaction():
        conn.execute("SELECT 1 FROM umbau_fleet_runs WHERE run_id = %s FOR UPDATE",
                     (run.run_id,))
        now = counts(conn, run.run_id)
        reason = _stop_reason(now, run.max_failures)
        if reason and (now.pending or now.running):
            # a target whose worker died is not taken over once the run is stopping
            conn.execute(f"""UPDATE umbau_fleet_targets t SET state = 'skipped', error = %s,
                                 owner = NULL, owner_pid = NULL, lease_expires = NULL
                             WHERE t.run_id = %s AND {_FREE}""", (reason, run.run_id))
            now = counts(conn, run.run_id)
        if not now.pending and not now.running:
            conn.execute("""UPDATE umbau_fleet_runs SET state = %s, finished_at = now()
                            WHERE run_id = %s AND state = 'running'""",
                         ("done" if now.done == now.total else "failed", run.run_id))
    return now, reason


def _stop_reason(now: Counts, max_failures: int | None) -> str | None:
    if now.canary_failed:
        return f"not started: {now.canary_failed} canary target(s) failed"
    if max_failures is not None and now.failed >= max_failures and now.failed:
        return f"not started: the failure budget ({max_failures}) is spent"
    return None


def require_run(conn: psycopg.Connection, run_id: str | None) -> Run:
    """The run ``run_id`` (newest when None), or :class:`UsageError`."""
    run = load_run(conn, run_id)
    if run is None:
        what = f"no fleet run {run_id!r}" if run_id else "no fleet run yet"
        raise UsageError(f"{what} in the control database: start one with "
                         "`umbau fleet upgrade`")
    return run


def require_run_missing(run_id: str) -> None:
    """:class:`UsageError` for a run asked for where no control database exists yet."""
    raise UsageError(f"no fleet run {run_id!r}: the control database does not exist yet; "
                     "start a run with `umbau fleet upgrade`")


def delete_run(conn: psycopg.Connection, run_id: str) -> None:
    conn.execute("DELETE FROM umbau_fleet_runs WHERE run_id = %s", (run_id,))


def translate(exc: psycopg.Error) -> DatabaseError:
    """A control-database error as umbau's own (one line)."""
    from umbau.postgres.errors import describe_error

    return DatabaseError(f"the fleet control database failed: {describe_error(exc)}: check "
                         "--control-url and that the database accepts writes")

