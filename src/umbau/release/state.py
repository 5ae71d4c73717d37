"""The ``umbau_releases`` table in the target database: one row per step attempt.

A release run holds a session-level advisory lock (``pg_try_advisory_lock``, PostgreSQL
docs "9.27.10. Advisory Lock Functions") on its own connection for the whole run; the
lock ends with the session, so a run killed with ``kill -9`` leaves no lock behind, and
a second operator is refused at once (:class:`~umbau.errors.ReleaseBusy`, exit 38)
with the holder's pid and host.

Outcomes: ``running`` (the step is in progress, or its process died), ``done``,
``failed``, ``undone`` (rolled back), ``undo_failed``, ``skipped`` (superseded by a
rerun of the same step after an interruption).
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from umbau.errors import ReleaseBusy
from umbau.masking import mask_secrets
from umbau.postgres.connect import connect, watch_client

TABLE = "umbau_releases"
HOST = socket.gethostname()
OUTCOMES = ("running", "done", "failed", "undone", "undo_failed", "skipped")

# Two int4 keys: 'umbr' and 1, for "a release run is in progress on this database".
LOCK_CLASS = 0x756D6272
RUN_LOCK = 1

DDL = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    id           bigserial PRIMARY KEY,
    run_id       text NOT NULL,
    version      text NOT NULL,
    step_index   integer NOT NULL,
    step_name    text NOT NULL,
    kind         text NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at  timestamptz,
    outcome      text NOT NULL CHECK (outcome IN
                     ('running', 'done', 'failed', 'undone', 'undo_failed', 'skipped')),
    error        text,
    host         text,
    pid          integer,
    detail       jsonb NOT NULL DEFAULT '{{}}'
);
CREATE INDEX IF NOT EXISTS {TABLE}_version_idx ON {TABLE} (version, id)
"""

_COLUMNS = ("id, run_id, version, step_index, step_name, kind, started_at, finished_at, "
            "outcome, error, host, pid, detail")


@dataclass
class ReleaseRow:
    """One row of ``umbau_releases``."""

    id: int
    run_id: str
    version: str
    step_index: int
    step_name: str
    kind: str
    started_at: datetime
    finished_at: datetime | None
    outcome: str
    error: str | None
    host: str | None
    pid: int | None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> float | None:
        """How long the step took (seconds), when it finished."""
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "run_id": self.run_id, "version": self.version,
                "step_index": self.step_index, "step": self.step_name, "kind": self.kind,
                "started_at": self.started_at.isoformat(),
                "finished_at": self.finished_at.isoformat() if self.finished_at else None,
                "seconds": None if self.seconds is None else round(self.seconds, 3),
                "outcome": self.outcome, "error": masked(self.error), "host": self.host,
                "pid": self.pid, "detail": masked(self.detail)}


def masked(value: Any) -> Any:
    """``value`` with every password in its strings replaced by ``***``
    (:func:`umbau.masking.mask_secrets`), through dicts, lists and tuples: what the
    release keeps in ``umbau_releases`` and returns never holds a URL's password."""
    if isinstance(value, str):
        return mask_secrets(value)
    if isinstance(value, Mapping):
        return {k: masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [masked(v) for v in value]
    return value


def _row(values: Any) -> ReleaseRow:
    detail = values[12]
    if isinstance(detail, str):
        detail = json.loads(detail)
    return ReleaseRow(id=values[0], run_id=values[1], version=values[2], step_index=values[3],
                      step_name=values[4], kind=values[5], started_at=values[6],
                      finished_at=values[7], outcome=values[8], error=values[9],
                      host=values[10], pid=values[11], detail=dict(detail or {}))


def table_exists(conn: Connection) -> bool:
    return bool(conn.execute(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": TABLE}).scalar())


def ensure_table(conn: Connection) -> None:
    """Create the table once; first runs on two machines serialize on a transaction lock
    (one query string: on an autocommit session it runs as one implicit transaction)."""
    if table_exists(conn):
        return
    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({LOCK_CLASS}, 0);\n{DDL}")


@contextmanager
def run_lock(url: str) -> Iterator[Connection]:
    """An autocommit session that holds the release lock for the block.

    Raises :class:`~umbau.errors.ReleaseBusy` (naming the holder's pid, host and the
    version it runs) when another session holds it: never waits, never both run.
    """
    with connect(url, autocommit=True) as conn:
        watch_client(conn)
        got = conn.execute(text("SELECT pg_try_advisory_lock(:c, :o)"),
                           {"c": LOCK_CLASS, "o": RUN_LOCK}).scalar()
        if not got:
            who = holder(conn)
            raise ReleaseBusy(f"another release run holds the release lock on this database "
                              f"({who}): wait for it to finish (`umbau release status`), or "
                              "stop it and rerun", who)
        try:
            yield conn
        finally:
            with suppress(Exception):  # the session ends next, and the lock with it
                conn.execute(text("SELECT pg_advisory_unlock(:c, :o)"),
                             {"c": LOCK_CLASS, "o": RUN_LOCK})


def holder(conn: Connection) -> str:
    """Who holds the release lock: server pid, client, and the step it runs (if known)."""
    row = conn.execute(text(
        """SELECT a.pid, a.application_name, host(a.client_addr), a.backend_start
           FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
           WHERE l.locktype = 'advisory' AND l.granted AND l.classid = :c
             AND l.objid = :o AND l.objsubid = 2
             AND l.database = (SELECT oid FROM pg_database
                               WHERE datname = current_database())"""),
        {"c": LOCK_CLASS, "o": RUN_LOCK}).first()
    if row is None:
        return "a session that has just let go"
    who = f"server pid {row[0]}, {row[1] or 'unknown program'} from {row[2] or 'local socket'}"
    if table_exists(conn):
        running = conn.execute(text(
            f"SELECT version, step_name, host, pid FROM {TABLE} WHERE outcome = 'running' "
            "ORDER BY id DESC LIMIT 1")).first()
        if running is not None:
            who += (f"; release {running[0]} at step {running[1]!r} on host {running[2]} "
                    f"pid {running[3]}")
    return who


def insert(conn: Connection, *, run_id: str, version: str, step_index: int, step_name: str,
           kind: str, outcome: str = "running", detail: Mapping[str, Any] | None = None,
           error: str | None = None) -> ReleaseRow:
    """A new row (``running`` unless told), stamped with this host and pid."""
    finished = "NULL" if outcome == "running" else "clock_timestamp()"
    values = conn.execute(text(
        f"""INSERT INTO {TABLE} (run_id, version, step_index, step_name, kind, outcome,
                                 error, host, pid, detail, finished_at)
            VALUES (:run, :version, :index, :name, :kind, :outcome, :error, :host, :pid,
                    CAST(:detail AS jsonb), {finished})
            RETURNING {_COLUMNS}"""),
        {"run": run_id, "version": version, "index": step_index, "name": step_name,
         "kind": kind, "outcome": outcome, "error": masked(error), "host": HOST,
         "pid": os.getpid(), "detail": json.dumps(masked(dict(detail or {})))}).one()
    return _row(values)


def update(conn: Connection, row_id: int, *, outcome: str | None = None,
           error: str | None = None, detail: Mapping[str, Any] | None = None,
           finish: bool = False) -> None:
    """Change a row: outcome, error (kept when None), detail merged in, finished now."""
    conn.execute(text(
        f"""UPDATE {TABLE} SET outcome = COALESCE(:outcome, outcome),
                error = COALESCE(:error, error),
                detail = detail || CAST(:detail AS jsonb),
                finished_at = CASE WHEN :finish THEN clock_timestamp() ELSE finished_at END
            WHERE id = :id"""),
        {"outcome": outcome, "error": None if error is None else masked(error)[:2000],
         "detail": json.dumps(masked(dict(detail or {}))), "finish": finish, "id": row_id})


def rows(conn: Connection, *, version: str | None = None, run_id: str | None = None,
         limit: int | None = None) -> list[ReleaseRow]:
    """Rows, newest first (all when ``limit`` is None); none when the table is missing."""
    if not table_exists(conn):
        return []
    where, params = [], {}
    if version is not None:
        where.append("version = :version")
        params["version"] = version
    if run_id is not None:
        where.append("run_id = :run")
        params["run"] = run_id
    sql = f"SELECT {_COLUMNS} FROM {TABLE}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY id DESC"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return [_row(r) for r in conn.execute(text(sql), params)]


def latest_run(conn: Connection, version: str) -> list[ReleaseRow]:
    """The rows of the newest run of ``version``, oldest first (empty: never run)."""
    newest = rows(conn, version=version, limit=1)
    if not newest:
        return []
    return list(reversed(rows(conn, run_id=newest[0].run_id)))


def restored_after(conn: Connection, history_table: str,
                   run: list[ReleaseRow]) -> str | None:
    """The restore that replaced the database after the last event ``run`` (one run's
    rows) recorded, as "restore FILE at TIME", or None.

    A restore (``umbau restore``, which writes a ``restore`` row into ``umbau_history``
    after it) of a backup taken by a release's backup step brings back the rows of
    ``umbau_releases`` as they were during that dump: the run looks interrupted in its
    backup step though it went further. Times: the history row's ``started_at`` (the
    restoring client's clock) against the rows' ``started_at``/``finished_at`` (the
    server's clock)."""
    from umbau.postgres import history
    from umbau.postgres.quoting import quote_dotted

    if not run or not history.table_exists(conn, history_table):
        return None
    last = max(t for r in run for t in (r.started_at, r.finished_at) if t is not None)
    found = conn.execute(text(
        f"SELECT message, started_at FROM {quote_dotted(history_table)} "
        "WHERE direction = 'restore' AND started_at > :last ORDER BY id DESC LIMIT 1"),
        {"last": last}).first()
    if found is None:
        return None
    return f"{found[0] or 'restore'} at {found[1]:%Y-%m-%d %H:%M:%S %Z}".strip()


def restore_rows(conn: Connection, kept: list[ReleaseRow]) -> None:
    """Put ``kept`` (one run's rows) back after a restore replaced the table's contents
    with those of the backup: the run's rows are deleted and written again, as they were."""
    ensure_table(conn)
    if not kept:
        return
    conn.execute(text(f"DELETE FROM {TABLE} WHERE run_id = :run"), {"run": kept[0].run_id})
    for row in kept:
        conn.execute(text(
            f"""INSERT INTO {TABLE} ({_COLUMNS}) VALUES (:id, :run, :version, :index, :name,
                    :kind, :started, :finished, :outcome, :error, :host, :pid,
                    CAST(:detail AS jsonb))"""),
            {"id": row.id, "run": row.run_id, "version": row.version, "index": row.step_index,
             "name": row.step_name, "kind": row.kind, "started": row.started_at,
             "finished": row.finished_at, "outcome": row.outcome, "error": row.error,
             "host": row.host, "pid": row.pid, "detail": json.dumps(row.detail)})
    conn.execute(text(
        f"SELECT setval(pg_get_serial_sequence('{TABLE}', 'id'), "
        f"(SELECT max(id) FROM {TABLE}))"))


def average_seconds(conn: Connection, version: str | None = None) -> dict[str, float]:
    """Mean duration (seconds) of the steps that finished ``done``, keyed by
    ``"name"`` for ``version``'s own past runs and ``"kind:<kind>"`` over every release."""
    if not table_exists(conn):
        return {}
    out: dict[str, float] = {}
    for kind, seconds in conn.execute(text(
            f"""SELECT kind, avg(extract(epoch FROM finished_at - started_at))
                FROM {TABLE} WHERE outcome = 'done' AND finished_at IS NOT NULL
                GROUP BY kind""")):
        out[f"kind:{kind}"] = float(seconds)
    if version is not None:
        for name, seconds in conn.execute(text(
                f"""SELECT step_name, avg(extract(epoch FROM finished_at - started_at))
                    FROM {TABLE} WHERE outcome = 'done' AND finished_at IS NOT NULL
                      AND version = :v GROUP BY step_name"""), {"v": version}):
            out[name] = float(seconds)
    return out
