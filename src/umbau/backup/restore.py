"""``umbau restore``: pg_restore into a database, refusing to overwrite tables unless
told twice (``clean`` and ``yes``); the restore is recorded in the history table."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Connection

from umbau.backup import manifest as mf
from umbau.backup import pg
from umbau.backup.binaries import PgTool
from umbau.backup.config import backup_config
from umbau.errors import (
    BackupCorrupt,
    OwnerRoleMissing,
    TargetNotEmpty,
    UnknownDatabaseRevision,
    UsageError,
)
from umbau.events import Event, EventHandler, emit
from umbau.postgres import clients, history
from umbau.postgres import dumpcatalog as catalog
from umbau.postgres.connect import connect, describe, normalize_url
from umbau.postgres.locks import migrator_lock
from umbau.postgres.quoting import quote_ident
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


def restore_args(conninfo: str, *, directory: bool, jobs: int | None, clean: bool,
                 no_owner: bool) -> list[str]:
    """pg_restore's options, the same for ``restore`` and ``backup verify --restore-test``
    (a verification must restore the way a restore will).

    One transaction unless ``jobs`` > 1 (pg_restore docs: ``--single-transaction`` and
    ``--jobs`` exclude each other): a failed or killed restore then leaves the target as
    it was, its drops of ``--clean`` included."""
    args = ["--exit-on-error", "--dbname", conninfo]
    if directory and jobs and jobs > 1:
        args += ["--jobs", str(jobs)]
    else:
        args.append("--single-transaction")
    if clean:
        args += ["--clean", "--if-exists"]
    if no_owner:
        args += ["--no-owner", "--no-privileges"]
    return args


def archive_owners(tool: PgTool, path: Path) -> set[str]:
    """The roles that own the archive's objects: the last field of each entry of
    ``pg_restore --list`` (``215; 1259 16385 TABLE public t alice``); "-" is no owner.
    Raises BackupCorrupt when the table of contents cannot be read."""
    code, out, err = pg.capture(tool, ["--list", str(path)])
    if code != 0:
        raise BackupCorrupt(f"the table of contents of {path} cannot be read "
                            f"({pg.first_error(err.splitlines())}): restore an older backup")
    owners = {line.split()[-1] for line in out.splitlines()
              if line.strip() and not line.startswith(";") and ";" in line}
    # pg_* roles are the server's own (pg_database_owner owns schema public): users
    # cannot create them, and pg_restore does not ALTER … OWNER TO them for schema public.
    return {o for o in owners if o != "-" and not o.startswith("pg_")}


def check_owners(conn: Connection, owners: set[str], where: str) -> None:
    """Raise OwnerRoleMissing when a role that owns objects of the backup does not exist
    on the target: pg_restore would fail on its ``ALTER … OWNER TO``."""
    missing = sorted(owners - catalog.role_names(conn))
    if missing:
        raise OwnerRoleMissing(
            f"the backup's objects are owned by role(s) {', '.join(missing)}, missing on "
            f"{where}: create them (CREATE ROLE {quote_ident(missing[0])}) or pass "
            "--no-owner to restore with the connecting user as owner", missing)


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
    """Restore ``path`` (a .dump file or directory-format folder) into the database.

    Refuses (before touching anything): a checksum mismatch (BackupCorrupt), a revision
    the scripts do not know (UnknownDatabaseRevision), a target with tables without
    ``clean`` and ``yes`` (TargetNotEmpty), owner roles missing on the target without
    ``no_owner`` (OwnerRoleMissing). Interrupted (Ctrl-C, SIGTERM, umbau killed), the
    restore's transaction is rolled back: pg_restore dies with umbau."""
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
        major = catalog.server_major(conn)
        existing = catalog.user_table_names(conn)
        tool = pg.tool(config, "pg_restore", pg.at_least(major, pg.archive_major(manifest)))
        if not no_owner:
            check_owners(conn, archive_owners(tool, entry.path), where)
        conn.rollback()
    check_target(existing, clean=clean, yes=yes, where=where)
    conninfo, env = clients.conninfo(url, major)
    args = restore_args(conninfo, directory=directory, jobs=jobs, clean=clean,
                        no_owner=no_owner)
    emit(on_event, Event(kind="restore_step", message=f"pg_restore into {where}"))
    started_at = datetime.now(UTC)
    started = time.monotonic()
    # Under the migrator lock: no migration may run while the schema is replaced.
    with clients.sigterm_as_interrupt(_STOPPED), migrator_lock(url, settings.lock_wait):
        pg.run_checked(tool, [*args, str(entry.path)], "pg_restore", env=env)
    result = RestoreResult(entry.path, pg.safe_url(url), clean=clean,
                           duration_s=time.monotonic() - started)
    with connect(url) as conn:
        result.revision = catalog.version_table_revisions(conn)
        in_backup = set((manifest.get("tables") or {}).keys())
        if in_backup:
            own = {settings.history_table, f"public.{settings.history_table}"}
            result.leftover_tables = [t for t in catalog.user_table_names(conn)
                                      if t not in in_backup and t not in own]
        _record_history(conn, settings, entry, result, started_at)
    if manifest:
        try:
            _record_restore(entry, result, started_at)
        except OSError as exc:  # a read-only backup folder must not fail a finished restore
            result.warnings.append(f"{entry.manifest_file} could not be updated "
                                   f"({exc.strerror}); the restore itself is complete")
    return result


_STOPPED = ("restore stopped; pg_restore was stopped and its transaction rolled back "
            "(a parallel --jobs restore may have left tables: rerun with --clean --yes)")


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
