"""Backups around ``umbau upgrade``: one taken by itself before a risky upgrade, and a
restore of it when a revision fails in a way its transaction could not undo.

``[tool.umbau.backup] before_upgrade``:

- ``"always"``: before every upgrade that has revisions pending;
- ``"destructive"`` (default): when the pending revisions' SQL drops or empties
  something (DROP TABLE/COLUMN/SCHEMA, TRUNCATE, DELETE without WHERE) or rewrites it
  (ALTER COLUMN … TYPE, UPDATE, DELETE), or cannot be rendered offline;
- ``"never"``.

With ``rollback="restore"`` a backup is always taken, and restored (with ``--clean``)
when the failed run left the database elsewhere than where it started: revisions
before the failing one were committed, or the failing one ran outside a transaction
(``autocommit_block``, ``CONCURRENTLY``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text

from umbau import alembic_bridge as bridge
from umbau.backup.config import backup_config
from umbau.backup.dump import BackupResult, backup
from umbau.backup.restore import RestoreResult, restore
from umbau.errors import MigrationFailed, UsageError
from umbau.events import Event, EventHandler, emit
from umbau.plan import UpgradePlan
from umbau.postgres import dumpcatalog as catalog
from umbau.postgres import history
from umbau.postgres.connect import connect
from umbau.settings import Settings

ROLLBACKS = ("none", "restore")


@dataclass
class Decision:
    """Whether to back up before this upgrade, and why."""

    backup: bool
    reason: str
    current: tuple[str, ...] = ()
    risky: list[str] = field(default_factory=list)


def decide(settings: Settings, project: bridge.Project, target: str, policy: str,
           plan: UpgradePlan | None = None) -> Decision:
    """Whether to back up before upgrading to ``target`` under ``policy``.

    ``plan``: the upgrade's plan (read once by ``umbau upgrade``): its current heads, its
    open session and the SQL the lint gate rendered are used instead of reading them again.
    """
    current, empty = _where_it_stands(settings, project, plan)
    if policy == "never":
        return Decision(False, "before_upgrade = never", current)
    if empty and policy == "destructive":
        return Decision(False, "the database is empty: nothing to lose", current)
    if not project.upgrade_steps(current, target):
        return Decision(False, "nothing pending", current)
    if policy == "always":
        return Decision(True, "before_upgrade = always", current)
    if len(current) > 1:
        return Decision(True, "several current revisions: the SQL cannot be rendered", current)
    from umbau import sql as sqlparse  # pglast only when it is needed

    rendered = plan.pending_sql() if plan is not None else None
    if rendered is None:
        try:
            rendered = bridge.render_sql(project, current[0] if current else None, target)
        except Exception as exc:
            return Decision(True, f"the SQL cannot be rendered offline ({type(exc).__name__})",
                            current)
    drops, unparsed = sqlparse.destructive_objects(rendered)
    # Alembic's own bookkeeping (UPDATE alembic_version) is not user data.
    rewrites = [r for r in sqlparse.rewritten_objects(rendered) if "alembic_version" not in r]
    risky = drops + rewrites + [f"unparsed: {u[:60]}" for u in unparsed]
    if risky:
        return Decision(True, "pending revisions drop or rewrite data", current, risky)
    return Decision(False, "nothing pending drops or rewrites data", current)


def _where_it_stands(settings: Settings, project: bridge.Project,
                     plan: UpgradePlan | None) -> tuple[tuple[str, ...], bool]:
    """The current heads, and whether the database holds no user table at all."""
    if plan is not None and plan.connection is not None:
        empty = not plan.current and not catalog.user_table_names(plan.connection)
        plan.connection.rollback()
        return plan.current, empty
    # Through env.py (custom version tables), without creating anything.
    with connect(settings.require_database_url()) as conn:
        current = bridge.current_heads(project, conn)
        return current, not current and not catalog.user_table_names(conn)


def policy_for(settings: Settings, policy: str | None, rollback: str | None) -> str:
    """The policy that decides (``always`` with ``--rollback restore``); UsageError on a
    rollback mode that does not exist or a restore without a backup."""
    rollback = rollback or "none"
    if rollback not in ROLLBACKS:
        raise UsageError(f"--rollback {rollback}: use one of {', '.join(ROLLBACKS)}")
    policy = policy or backup_config(settings).before_upgrade
    if rollback == "restore" and policy == "never":
        raise UsageError("--rollback restore needs a backup: do not combine it with "
                         "--backup never")
    return "always" if rollback == "restore" and policy != "never" else policy


def guarded_upgrade(
    settings: Settings,
    project: bridge.Project,
    target: str,
    run: Callable[[], Any],
    *,
    policy: str | None = None,
    rollback: str | None = None,
    on_event: EventHandler | None = None,
    decision: Decision | None = None,
) -> Any:
    """Back up if the policy says so, run the upgrade, restore on an unclean failure.

    ``decision``: one already made with :func:`decide` on the upgrade's plan.
    """
    policy = policy_for(settings, policy, rollback)
    rollback = rollback or "none"
    if policy == "never":
        return run()  # no connection, no catalog queries: never means never
    if decision is None:
        decision = decide(settings, project, target, policy)
    taken: BackupResult | None = None
    if decision.backup:
        emit(on_event, Event(kind="backup_before_upgrade", message=decision.reason))
        taken = backup(settings, reason=f"before upgrade to {target}: {decision.reason}",
                       on_event=on_event)
        emit(on_event, Event(kind="backup_taken", message=str(taken.path),
                             duration=taken.manifest["duration_s"]))
    try:
        return run()
    except MigrationFailed as exc:
        if rollback != "restore" or taken is None:
            raise
        if not _unclean(settings, project, decision.current, exc.revision):
            emit(on_event, Event(kind="rollback_skipped", revision=exc.revision,
                                 message="the failed revision was rolled back by its "
                                         "transaction; the database is where it started"))
            raise
        emit(on_event, Event(kind="rollback_restore", revision=exc.revision,
                             message=str(taken.path)))
        restored = restore_for_rollback(settings, taken.path, taken.manifest["created"])
        raise MigrationFailed(
            f"{exc.message.removesuffix('; fix it and rerun')}; restored the backup taken "
            f"before the upgrade ({taken.path.name}), the database is back at "
            f"{', '.join(restored.revision) or 'base'}: fix the revision and rerun",
            exc.revision, exc.attempts,
        ) from exc


def _unclean(settings: Settings, project: bridge.Project, before: tuple[str, ...],
             failed: str | None) -> bool:
    """Did the failed run leave anything behind that its transaction did not undo?"""
    with connect(settings.require_database_url()) as conn:
        now = bridge.current_heads(project, conn)
    if tuple(sorted(now)) != tuple(sorted(before)):
        return True
    if failed and project.known(failed):
        source = Path(project.script.get_revision(failed).path).read_text(encoding="utf-8")
        return "autocommit_block" in source or "concurrently" in source.lower()
    return False


def restore_for_rollback(settings: Settings, path: Path, created: str) -> RestoreResult:
    """Restore with --clean, drop the tables the failed upgrade created, and keep the
    history rows written since the backup (the failure among them)."""
    url = settings.require_database_url()
    since = datetime.fromisoformat(created)
    with connect(url) as conn:
        newer = [r for r in history.read(conn, settings.history_table) if r.finished_at >= since]
    result = restore(settings, path, clean=True, yes=True)
    with connect(url) as conn:
        for key in result.leftover_tables:
            schema, _, name = key.partition(".")
            conn.execute(text(f"DROP TABLE IF EXISTS {catalog.qualified(schema, name)} CASCADE"))
        for row in reversed(newer):
            history.record(conn, settings.history_table, revision=row.revision,
                           down_revision=row.down_revision, direction=row.direction,
                           message=row.message, started_at=row.started_at,
                           finished_at=row.finished_at, attempts=row.attempts,
                           outcome=row.outcome, error=row.error, checksum=row.checksum)
        conn.commit()
    result.leftover_tables = []
    return result
