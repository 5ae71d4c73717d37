"""``umbau restore``: pg_restore into a database, refusing to overwrite tables unless
told twice (``clean`` and ``yes``); the restore is recorded in the history table."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from umbau.backup import manifest as mf
from umbau.backup import pg
from umbau.backup.config import backup_config
from umbau.errors import (
    BackupCorrupt,
    TargetNotEmpty,
    UnknownDatabaseRevision,
    UsageError,
)
from umbau.events import Event, EventHandler, emit
from umbau.postgres import history
from umbau.postgres.connect import connect, describe, normalize_url
from umbau.postgres.locks import migrator_lock
from umbau.settings import Settings


@dataclass
class RestoreResult:
    """A finished restore."""

    path: Path
    database: str
    revision: tuple[str, ...] = ()
    duration_s: float = 0.0
    clean: bool = False
    leftover_tables: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "database": self.database,
                "revision": list(self.revision), "duration_s": round(self.duration_s, 3),
                "clean": self.clean, "leftover_tables": self.leftover_tables,
                "warnings": self.warnings}


def check_known_revision(settings: Settings, url: str, revisions: list[str]) -> None:
    """Refuse a backup whose revision the project's scripts do not know."""
    if not revisions or (settings.alembic_config is None and settings.script_location is None):
        return
    from umbau.alembic_bridge import Project

    project = Project(settings, url)
    unknown = [r for r in revisions if not project.known(r)]
    if unknown:
        raise UnknownDatabaseRevision(
            f"the backup is at revision {', '.join(unknown)}, which the revision scripts do "
            "not know: check out the application version that wrote it, or pass "
            "--ignore-revision to restore anyway",
            unknown,
        )


def check_target(tables: list[str], *, clean: bool, yes: bool, where: str) -> None:
    if not tables:
        return
    shown = ", ".join(tables[:5]) + (f" and {len(tables) - 5} more" if len(tables) > 5 else "")
    if not clean:
        raise TargetNotEmpty(f"{where} has tables ({shown}): restore into an empty database, "
                             "or pass --clean --yes to replace what the backup contains", tables)
    if not yes:
        raise TargetNotEmpty(f"--clean drops and replaces tables in {where} ({shown}): "
                             "confirm with --yes", tables)


def restore(
    settings: Settings,
    path: Path,
    *,
    database_url: str | None = None,
    clean: bool = False,
    yes: bool = False,
    jobs: int | None = None,
    no_owner: bool = False,
    ignore_revision: bool = False,
    on_event: EventHandler | None = None,
) -> RestoreResult:
    """Restore ``path`` (a .dump file or directory-format folder) into the database."""
    config = backup_config(settings)
    entry = mf.entry_for(Path(path).resolve())
    manifest = entry.manifest
    url = database_url or settings.require_database_url()
    directory = entry.path.is_dir()
    if jobs is not None and (jobs < 1 or not directory):
        raise UsageError("--jobs restores a directory-format backup in parallel (1 or more); "
                         "a custom-format backup is restored in one transaction: leave "
                         "--jobs out")
    if manifest.get("sha256"):
        emit(on_event, Event(kind="restore_step", message="checksum"))
        if mf.sha256_of(entry.path) != manifest["sha256"]:
            raise BackupCorrupt(f"{entry.path} does not match its manifest's sha256 (changed "
                                "or truncated): restore an older backup")
    if not ignore_revision:
        check_known_revision(settings, url, list(manifest.get("revision") or []))
    where = describe(normalize_url(url))
    with connect(url) as conn:
        major = pg.server_major(conn)
        existing = pg.user_table_names(conn)
        conn.rollback()
    check_target(existing, clean=clean, yes=yes, where=where)
    tool = pg.tool(config, "pg_restore", pg.at_least(major, pg.archive_major(manifest)))
    conninfo, env = pg.libpq(url)
    args = ["--exit-on-error", "--dbname", conninfo]
    if directory:
        n = jobs or max(config.jobs, int((manifest.get("options") or {}).get("jobs", 1)), 2)
        args += ["--jobs", str(n)]
    else:
        # All or nothing: a failure rolls back the drops of --clean as well.
        args.append("--single-transaction")
    if clean:
        args += ["--clean", "--if-exists"]
    if no_owner:
        args += ["--no-owner", "--no-privileges"]
    emit(on_event, Event(kind="restore_step", message=f"pg_restore into {where}"))
    started_at = datetime.now(UTC)
    started = time.monotonic()
    # Under the migrator lock: no migration may run while the schema is replaced.
    with migrator_lock(url, settings.lock_wait):
        pg.run_checked(tool, [*args, str(entry.path)], "pg_restore", env=env)
    result = RestoreResult(entry.path, pg.safe_url(url), clean=clean,
                           duration_s=time.monotonic() - started)
    with connect(url) as conn:
        result.revision = pg.version_table_revisions(conn)
        in_backup = set((manifest.get("tables") or {}).keys())
        if in_backup:
            own = {settings.history_table, f"public.{settings.history_table}"}
            result.leftover_tables = [t for t in pg.user_table_names(conn)
                                      if t not in in_backup and t not in own]
        _record_history(conn, settings, entry, result, started_at)
    if manifest:
        try:
            _record_restore(entry, result, started_at)
        except OSError as exc:  # a read-only backup folder must not fail a finished restore
            result.warnings.append(f"{entry.manifest_file} could not be updated "
                                   f"({exc.strerror}); the restore itself is complete")
    return result


def _record_history(conn: Any, settings: Settings, entry: mf.BackupEntry,
                    result: RestoreResult, started_at: datetime) -> None:
    history.ensure_table(conn, settings.history_table)
    history.record(conn, settings.history_table,
                   revision=",".join(result.revision) or "base", down_revision=None,
                   direction="restore", message=f"restore {entry.path.name}",
                   started_at=started_at, finished_at=datetime.now(UTC), attempts=1,
                   outcome="ok", checksum=entry.manifest.get("sha256"))
    conn.commit()


def _record_restore(entry: mf.BackupEntry, result: RestoreResult, at: datetime) -> None:
    data = dict(entry.manifest)
    data["restores"] = [*data.get("restores", []),
                        {"at": at.isoformat(), "database": result.database,
                         "duration_s": round(result.duration_s, 3)}]
    mf.write_json(entry.manifest_file, data)
