"""``umbau release status`` and ``umbau release history``: read ``umbau_releases``."""

from __future__ import annotations

from sqlalchemy import text

from umbau.postgres.connect import connect
from umbau.release import state
from umbau.release.result import ReleaseHistory, ReleaseStatus, run_state
from umbau.settings import Settings


def release_status(settings: Settings) -> ReleaseStatus:
    """The newest run of each version (newest first) with its state (``released``,
    ``rolled back``, ``rollback failed``, ``rolling back``, ``running``,
    ``interrupted``, ``rewound by a restore``: an ``umbau restore`` after the run's last
    recorded step), and the rows of those runs; who holds the release lock now.

    Reads only (the table is not created). Raises DatabaseError subclasses when the
    server cannot be reached.
    """
    with connect(settings.require_database_url(), autocommit=True) as conn:
        holder = None
        if conn.execute(text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND classid = :c AND objid = :o AND objsubid = 2"),
                {"c": state.LOCK_CLASS, "o": state.RUN_LOCK}).scalar():
            holder = state.holder(conn)
        everything = list(reversed(state.rows(conn)))  # oldest first
        by_run: dict[str, list[state.ReleaseRow]] = {}
        for row in everything:
            by_run.setdefault(row.run_id, []).append(row)
        newest: dict[str, str] = {}
        for row in everything:
            newest[row.version] = row.run_id
        situations: dict[str, str] = {}
        for run_id in newest.values():
            situation = run_state(by_run[run_id])
            if situation == "running" and holder is None:
                situation = "interrupted"  # nobody holds the lock: its process is gone
            if situation == "interrupted" and state.restored_after(
                    conn, settings.history_table, by_run[run_id]):
                situation = "rewound by a restore"  # the next run starts afresh
            situations[run_id] = situation
    runs, steps = [], []
    for version, run_id in sorted(newest.items(), key=lambda kv: -by_run[kv[1]][-1].id):
        rows = by_run[run_id]
        situation = situations[run_id]
        finished = [r.finished_at for r in rows if r.finished_at is not None]
        runs.append({"version": version, "run_id": run_id, "state": situation,
                     "started_at": rows[0].started_at.isoformat(),
                     "finished_at": max(finished).isoformat() if finished else None,
                     "host": rows[0].host, "steps": len({r.step_index for r in rows}),
                     "rollback": rows[0].detail.get("rollback")})
        steps += rows
    return ReleaseStatus(runs=runs, steps=steps, lock_holder=holder)


def release_history(settings: Settings, limit: int | None = 50,
                    version: str | None = None) -> ReleaseHistory:
    """Rows of ``umbau_releases``, newest first (``limit`` rows; None: all), of one
    ``version`` or all. Reads only."""
    with connect(settings.require_database_url(), autocommit=True) as conn:
        return ReleaseHistory(state.rows(conn, version=version, limit=limit))
