"""Signs of a server under strain, read from the statistics views.

* Replica lag: ``max(replay_lag)`` of ``pg_stat_replication`` on the primary (PostgreSQL
  docs, 28.2.3 "pg_stat_replication"): how long ago the slowest standby replayed WAL
  that the primary had flushed. NULL (no standby, or a standby idle and caught up) reads
  as no lag. Seeing the column needs the ``pg_read_all_stats`` role (or superuser):
  without it the value is NULL, so umbau cannot see lag; grant the role to the
  backfill's user where lag matters.
* The oldest transaction: ``now() - xact_start`` of the oldest open transaction of a
  client session (28.2.3 "pg_stat_activity"), in any database of the server, since a
  long transaction holds back vacuum everywhere. The caller's own session is left out.
* Vacuum on a table: a row of ``pg_stat_progress_vacuum`` (28.4.5) for the table,
  started by autovacuum or by a VACUUM command.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

_REPLICA_LAG = """
SELECT extract(epoch FROM max(replay_lag))::float8 FROM pg_stat_replication
"""

_OLDEST_TRANSACTION = """
SELECT pid, extract(epoch FROM now() - xact_start)::float8, coalesce(application_name, '')
FROM pg_stat_activity
WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid() AND backend_type = 'client backend'
ORDER BY xact_start
LIMIT 1
"""

_VACUUM = """
SELECT p.pid, a.backend_type = 'autovacuum worker'
FROM pg_stat_progress_vacuum p LEFT JOIN pg_stat_activity a ON a.pid = p.pid
WHERE p.relid = %s
LIMIT 1
"""


@dataclass(frozen=True)
class OldestTransaction:
    """The oldest open transaction of another session: its pid, age in seconds and
    application_name."""

    pid: int
    age: float
    application: str


def replica_lag(conn: psycopg.Connection) -> float | None:
    """Seconds the slowest standby is behind in replay, None without a visible standby."""
    row = conn.execute(_REPLICA_LAG).fetchone()
    return None if row is None or row[0] is None else float(row[0])


def oldest_transaction(conn: psycopg.Connection) -> OldestTransaction | None:
    """The oldest open transaction of any other client session, None if there is none."""
    row = conn.execute(_OLDEST_TRANSACTION).fetchone()
    return None if row is None else OldestTransaction(int(row[0]), float(row[1]), str(row[2]))


def vacuum_on(conn: psycopg.Connection, table_oid: int) -> str | None:
    """``"autovacuum"`` or ``"vacuum"`` when one runs on the table, else None."""
    row = conn.execute(_VACUUM, (table_oid,)).fetchone()
    if row is None:
        return None
    return "autovacuum" if row[1] else "vacuum"
