"""The state of backfills: ``umbau_backfills`` (one row each) and
``umbau_backfill_chunks`` (its key range cut into chunks, each with a checkpoint,
a row count and a worker lease).

A worker claims a chunk with ``SELECT … FOR UPDATE SKIP LOCKED``. A chunk is free
when nobody owns it, when its lease has expired, or when the owner's server session
is gone (a killed worker's connection ends with it, so its chunk is free at once;
the lease covers owners whose session lingers). Every batch locks its chunk row,
checks that it still owns it and advances the checkpoint in the batch's own
transaction, so two workers never change the same rows.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

STATUSES = ("running", "paused", "done", "failed", "cancelled")

DDL = """
CREATE TABLE IF NOT EXISTS umbau_backfills (
    name             text PRIMARY KEY,
    table_name       text NOT NULL,
    key_columns      text[] NOT NULL,
    kind             text NOT NULL,
    fingerprint      text NOT NULL,
    definition       jsonb NOT NULL,
    source           text,
    status           text NOT NULL CHECK (status IN
                         ('running', 'paused', 'done', 'failed', 'cancelled')),
    rows_total       bigint,
    key_min          text[],
    key_max          text[],
    retries          bigint NOT NULL DEFAULT 0,
    last_error       text,
    last_error_range text,
    verification     jsonb,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    failed_batches   bigint NOT NULL DEFAULT 0,
    held             text
);
CREATE TABLE IF NOT EXISTS umbau_backfill_chunks (
    backfill         text NOT NULL REFERENCES umbau_backfills (name) ON DELETE CASCADE,
    chunk            int NOT NULL,
    lower_key        text[],
    upper_key        text[],
    checkpoint       text[],
    status           text NOT NULL DEFAULT 'pending'
                         CHECK (status IN ('pending', 'running', 'done')),
    rows_done        bigint NOT NULL DEFAULT 0,
    batches          bigint NOT NULL DEFAULT 0,
    owner            text,
    owner_pid        int,
    owner_started    timestamptz,
    lease_expires    timestamptz,
    claims           int NOT NULL DEFAULT 0,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (backfill, chunk)
);
"""

# Columns added after the first release: state tables created before get them on the
# next run.
_ADDED_COLUMNS = """
ALTER TABLE umbau_backfills ADD COLUMN IF NOT EXISTS failed_batches bigint NOT NULL DEFAULT 0;
ALTER TABLE umbau_backfills ADD COLUMN IF NOT EXISTS held text;
"""

# Two int4 keys for pg_advisory_xact_lock: 'umba' and "create the state tables".
_DDL_LOCK = (0x756D6261, 2)


def ensure_tables(conn: psycopg.Connection) -> None:
    """Create the state tables once; concurrent first runs serialize on an advisory lock."""
    with conn.transaction():
        if _current(conn):
            return
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", _DDL_LOCK)
        conn.execute(DDL)
        conn.execute(_ADDED_COLUMNS)


def _current(conn: psycopg.Connection) -> bool:
    """Both tables exist, with the newest column."""
    row = conn.execute("""SELECT to_regclass('umbau_backfill_chunks') IS NOT NULL AND EXISTS (
                              SELECT 1 FROM pg_attribute WHERE attname = 'held'
                              AND attrelid = to_regclass('umbau_backfills'))""").fetchone()
    return bool(row and row[0])


# The chunk owner's server session still exists (one definition for claiming a chunk and
# for the --restart guard). A role that is neither superuser nor member of
# pg_read_all_stats sees other roles' sessions with backend_start NULL (PostgreSQL docs,
# 28.2.3 "pg_stat_activity"): such a session counts as the owner's, since treating it as
# gone would let an operator of another role reset a backfill under running workers. A
# reused pid is then freed by the lease (claim) or by the session ending (--restart).
_OWNER_SESSION_ALIVE = """EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = c.owner_pid
        AND (a.backend_start IS NULL OR a.backend_start = c.owner_started))"""


@dataclass
class ChunkState:
    chunk: int
    lower_key: list[str] | None
    upper_key: list[str] | None
    checkpoint: list[str] | None
    status: str
    rows_done: int
    batches: int
    owner: str | None
    lease_expires: datetime | None
    claims: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "chunk": self.chunk, "lower_key": self.lower_key, "upper_key": self.upper_key,
            "checkpoint": self.checkpoint, "status": self.status, "rows_done": self.rows_done,
            "batches": self.batches, "owner": self.owner,
            "lease_expires": self.lease_expires.isoformat() if self.lease_expires else None,
            "claims": self.claims,
        }


@dataclass
class BackfillState:
    """One row of ``umbau_backfills`` with its chunks."""

    name: str
    table: str
    key: list[str]
    kind: str
    fingerprint: str
    definition: dict[str, Any]
    source: str | None
    status: str
    rows_total: int | None
    key_min: list[str] | None
    key_max: list[str] | None
    retries: int
    last_error: str | None
    last_error_range: str | None
    verification: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    failed_batches: int = 0
    held: str | None = None
    chunks: list[ChunkState] = field(default_factory=list)

    @property
    def rows_done(self) -> int:
        return sum(c.rows_done for c in self.chunks)

    @property
    def chunks_done(self) -> int:
        return sum(1 for c in self.chunks if c.status == "done")

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "table": self.table, "key": self.key, "kind": self.kind,
            "fingerprint": self.fingerprint, "definition": self.definition,
            "source": self.source, "status": self.status, "rows_total": self.rows_total,
            "rows_done": self.rows_done, "key_min": self.key_min, "key_max": self.key_max,
            "chunks_done": self.chunks_done, "chunks_total": len(self.chunks),
            "retries": self.retries, "last_error": self.last_error,
            "last_error_range": self.last_error_range, "verification": self.verification,
            "created_at": self.created_at.isoformat(), "updated_at": self.updated_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "failed_batches": self.failed_batches, "held": self.held,
            "chunks": [c.as_dict() for c in self.chunks],
        }


_STATE_COLUMNS = """name, table_name, key_columns, kind, fingerprint, definition, source, status,
    rows_total, key_min, key_max, retries, last_error, last_error_range, verification,
    created_at, updated_at, finished_at, failed_batches, held"""


def load(conn: psycopg.Connection, name: str) -> BackfillState | None:
    """The state of one backfill, or None (also when the tables do not exist yet)."""
    exists = conn.execute("SELECT to_regclass('umbau_backfills')").fetchone()
    if not exists or exists[0] is None:
        return None
    row = conn.execute(f"SELECT {_STATE_COLUMNS} FROM umbau_backfills WHERE name = %s",
                       (name,)).fetchone()
    if row is None:
        return None
    state = BackfillState(*row)
    state.chunks = [ChunkState(*r) for r in conn.execute(
        """SELECT chunk, lower_key, upper_key, checkpoint, status, rows_done, batches, owner,
                  lease_expires, claims
           FROM umbau_backfill_chunks WHERE backfill = %s ORDER BY chunk""", (name,))]
    return state


def list_names(conn: psycopg.Connection) -> list[str]:
    exists = conn.execute("SELECT to_regclass('umbau_backfills')").fetchone()
    if not exists or exists[0] is None:
        return []
    return [r[0] for r in conn.execute("SELECT name FROM umbau_backfills ORDER BY created_at")]


def create(conn: psycopg.Connection, *, name: str, table: str, key: Sequence[str], kind: str,
           fingerprint: str, definition: dict[str, Any], source: str | None,
           rows_total: int, bounds: Sequence[Sequence[str]],
           key_min: Sequence[str] | None, key_max: Sequence[str] | None) -> bool:
    """Insert the backfill and its chunks (cut at ``bounds``); False if it already exists.

    Runs in the caller's transaction: a second creator blocks on the primary key until
    the first commits and then finds the row, so chunks are cut exactly once.
    """
    cur = conn.execute(
        """INSERT INTO umbau_backfills (name, table_name, key_columns, kind, fingerprint,
               definition, source, status, rows_total, key_min, key_max)
           VALUES (%s, %s, %s, %s, %s, %s, %s, 'running', %s, %s, %s)
           ON CONFLICT (name) DO NOTHING""",
        (name, table, list(key), kind, fingerprint, json.dumps(definition), source, rows_total,
         list(key_min) if key_min else None, list(key_max) if key_max else None))
    if cur.rowcount == 0:
        return False
    edges: list[list[str] | None] = [None, *[list(b) for b in bounds], None]
    with conn.cursor() as c:
        c.executemany(
            """INSERT INTO umbau_backfill_chunks (backfill, chunk, lower_key, upper_key, checkpoint)
               VALUES (%s, %s, %s, %s, %s)""",
            [(name, i, edges[i], edges[i + 1], edges[i]) for i in range(len(edges) - 1)])
    return True


def set_status(conn: psycopg.Connection, name: str, status: str,
               only_from: Sequence[str] | None = None) -> int:
    """Change the status (optionally only from the given ones); returns rows changed."""
    query = "UPDATE umbau_backfills SET status = %s, updated_at = now()"
    params: list[Any] = [status]
    if status == "done":
        query += ", finished_at = now()"
    if status == "running":  # the failure budget counts from each (re)start
        query += ", failed_batches = 0"
    query += " WHERE name = %s"
    params.append(name)
    if only_from:
        query += " AND status = ANY(%s)"
        params.append(list(only_from))
    return conn.execute(query, params).rowcount


def record_failure(conn: psycopg.Connection, name: str, error: str,
                   key_range: str | None) -> None:
    conn.execute(
        """UPDATE umbau_backfills SET status = 'failed', last_error = %s,
               last_error_range = %s, updated_at = now()
           WHERE name = %s AND status = 'running'""", (error[:2000], key_range, name))


def add_retries(conn: psycopg.Connection, name: str, retries: int) -> None:
    if retries:
        conn.execute("UPDATE umbau_backfills SET retries = retries + %s WHERE name = %s",
                     (retries, name))


def claim(conn: psycopg.Connection, name: str, owner: str, lease: float,
          fingerprint: str) -> ChunkState | None:
    """Take a free chunk (see the module docstring); None when none is free right now,
    or when the backfill of that name now has another definition (reset and redeclared)."""
    row = conn.execute(
        """SELECT c.chunk FROM umbau_backfill_chunks c
           JOIN umbau_backfills b ON b.name = c.backfill AND b.fingerprint = %s
           WHERE c.backfill = %s AND c.status <> 'done'
             AND (c.owner IS NULL OR c.owner = %s OR c.lease_expires < now()
                  OR NOT """ + _OWNER_SESSION_ALIVE + """)
           ORDER BY c.chunk
           LIMIT 1 FOR UPDATE OF c SKIP LOCKED""", (fingerprint, name, owner)).fetchone()
    if row is None:
        return None
    got = conn.execute(
        """UPDATE umbau_backfill_chunks SET owner = %s, owner_pid = pg_backend_pid(),
               owner_started = (SELECT backend_start FROM pg_stat_activity
                                WHERE pid = pg_backend_pid()),
               lease_expires = now() + make_interval(secs => %s), status = 'running',
               claims = claims + 1, updated_at = now()
           WHERE backfill = %s AND chunk = %s
           RETURNING chunk, lower_key, upper_key, checkpoint, status, rows_done, batches, owner,
                     lease_expires, claims""", (owner, lease, name, row[0])).fetchone()
    return ChunkState(*got) if got else None


def open_chunks(conn: psycopg.Connection, name: str) -> int:
    row = conn.execute("""SELECT count(*) FROM umbau_backfill_chunks
                          WHERE backfill = %s AND status <> 'done'""", (name,)).fetchone()
    return int(row[0]) if row else 0


def release(conn: psycopg.Connection, name: str, chunk: int, owner: str) -> None:
    conn.execute("""UPDATE umbau_backfill_chunks SET owner = NULL, owner_pid = NULL,
                        lease_expires = NULL, updated_at = now()
                    WHERE backfill = %s AND chunk = %s AND owner = %s""", (name, chunk, owner))


def progress(conn: psycopg.Connection, name: str) -> tuple[int, int, int, str | None]:
    """(rows done, chunks done, chunks, why batches are held or None) of a backfill."""
    row = conn.execute(
        """SELECT coalesce(sum(c.rows_done), 0), count(*) FILTER (WHERE c.status = 'done'),
                  count(c.chunk), (SELECT held FROM umbau_backfills WHERE name = %s)
           FROM umbau_backfill_chunks c WHERE c.backfill = %s""", (name, name)).fetchone()
    if row is None:  # an aggregate always returns a row; for mypy
        return 0, 0, 0, None
    return int(row[0]), int(row[1]), int(row[2]), row[3]


def status_of(conn: psycopg.Connection, name: str, fingerprint: str) -> str | None:
    """The status of the backfill, None if it vanished or was redeclared differently."""
    row = conn.execute("SELECT status FROM umbau_backfills WHERE name = %s AND fingerprint = %s",
                       (name, fingerprint)).fetchone()
    return None if row is None else str(row[0])


def set_held(conn: psycopg.Connection, name: str, reason: str | None) -> None:
    """Record why batches are held (None: they are not), for progress and status."""
    conn.execute("UPDATE umbau_backfills SET held = %s WHERE name = %s "
                 "AND held IS DISTINCT FROM %s", (reason, name, reason))


def extend_lease(conn: psycopg.Connection, name: str, chunk: int, owner: str,
                 lease: float) -> None:
    """Keep a chunk while its owner waits (held batches), so that no one takes it over."""
    conn.execute("""UPDATE umbau_backfill_chunks
                    SET lease_expires = now() + make_interval(secs => %s)
                    WHERE backfill = %s AND chunk = %s AND owner = %s""",
                 (lease, name, chunk, owner))


def count_failed_batch(conn: psycopg.Connection, name: str) -> int:
    """Count one more failed batch; returns the count since the run (re)started."""
    row = conn.execute("UPDATE umbau_backfills SET failed_batches = failed_batches + 1 "
                       "WHERE name = %s RETURNING failed_batches", (name,)).fetchone()
    return int(row[0]) if row else 0


@dataclass(frozen=True)
class LiveOwner:
    """A worker that owns a chunk and can still write: its server session is alive."""

    owner: str
    pid: int | None
    chunk: int
    lease_left: float | None

    def __str__(self) -> str:
        left = self.lease_left
        lease = "" if left is None else f", lease ends in {max(0.0, left):.0f} s"
        pid = "" if self.pid is None else f" (server pid {self.pid})"
        return f"worker {self.owner}{pid} owns chunk {self.chunk}{lease}"


# An owner is live while its session is (the same pid and backend start): a batch commits
# on the session that claimed the chunk, so an owner whose session ended can never write
# again, whatever its lease says. Only an owner recorded without a session counts by its
# lease.
_LIVE_OWNERS = """
SELECT c.owner, c.owner_pid, c.chunk, extract(epoch FROM c.lease_expires - now())::float8
FROM umbau_backfill_chunks c
WHERE c.backfill = %s AND c.owner IS NOT NULL AND c.status <> 'done'
  AND (""" + _OWNER_SESSION_ALIVE + """
       OR (c.owner_pid IS NULL AND c.lease_expires > now()))
ORDER BY c.chunk
"""


def reset(conn: psycopg.Connection, name: str) -> list[LiveOwner]:
    """Forget a backfill (``run --restart``) unless a live worker owns one of its chunks.

    Returns those owners and changes nothing when there are any. Runs in the caller's
    transaction: the backfill's row and chunk rows are locked first (waiting, within
    lock_timeout, for a batch in flight to commit), so no worker can claim a chunk or
    commit a batch between the check and the delete.
    """
    conn.execute("SELECT 1 FROM umbau_backfills WHERE name = %s FOR UPDATE", (name,))
    conn.execute("SELECT 1 FROM umbau_backfill_chunks WHERE backfill = %s FOR UPDATE", (name,))
    live = live_owners(conn, name)
    if not live:
        conn.execute("DELETE FROM umbau_backfills WHERE name = %s", (name,))
    return live


def live_owners(conn: psycopg.Connection, name: str) -> list[LiveOwner]:
    """The workers that own a chunk of the backfill and can still write to it."""
    return [LiveOwner(*r) for r in conn.execute(_LIVE_OWNERS, (name,))]
