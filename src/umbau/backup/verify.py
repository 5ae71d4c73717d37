"""``umbau backup verify``: checksum, a full read of the archive, and on request a
restore into a scratch database whose row counts and revision must match the manifest.
The outcome is written into the manifest."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from umbau.backup import manifest as mf
from umbau.backup import pg
from umbau.backup.binaries import PgTool
from umbau.backup.config import backup_config
from umbau.backup.restore import archive_owners, check_owners, restore_args
from umbau.errors import BackupFailed, OwnerRoleMissing, UsageError
from umbau.events import Event, EventHandler, emit
from umbau.postgres import clients, scratch
from umbau.postgres import dumpcatalog as catalog
from umbau.postgres.connect import connect, describe, normalize_url
from umbau.postgres.errors import describe_error
from umbau.settings import Settings

VERSION_TABLE = "public.alembic_version"


@dataclass
class RestoreTest:
    """A restore into a scratch database, compared with the manifest."""

    database: str
    duration_s: float = 0.0
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    revision_expected: list[str] | None = None
    revision_actual: list[str] | None = None

    @property
    def revision_ok(self) -> bool | None:
        if self.revision_expected is None:
            return None
        return sorted(self.revision_expected) == sorted(self.revision_actual or [])

    @property
    def ok(self) -> bool:
        return all(t["ok"] for t in self.tables.values()) and self.revision_ok is not False

    def as_dict(self) -> dict[str, Any]:
        return {"database": self.database, "duration_s": round(self.duration_s, 3),
                "tables": self.tables, "revision_expected": self.revision_expected,
                "revision_actual": self.revision_actual, "revision_ok": self.revision_ok,
                "ok": self.ok}


@dataclass
class VerifyResult:
    """What verify found; ``ok`` is False when anything is wrong."""

    path: Path
    checksum_ok: bool | None = None
    archive_ok: bool = False
    entries: int = 0
    restore_test: RestoreTest | None = None
    problems: list[str] = field(default_factory=list)
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    @property
    def ok(self) -> bool:
        return not self.problems and self.archive_ok and self.checksum_ok is not False and (
            self.restore_test is None or self.restore_test.ok)

    def as_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "ok": self.ok, "at": self.at,
                "checksum_ok": self.checksum_ok, "archive_ok": self.archive_ok,
                "entries": self.entries, "problems": self.problems,
                "restore_test": self.restore_test.as_dict() if self.restore_test else None}


def verify(settings: Settings, path: Path, *, restore_test: bool = False,
           database_url: str | None = None, no_owner: bool = False,
           on_event: EventHandler | None = None) -> VerifyResult:
    """Check a backup; the result is recorded in its manifest (when it has one).

    The restore test restores as ``umbau restore`` does, with the same pg_restore
    options (owners included unless ``no_owner``): roles that own objects in the backup
    and are missing on the server are a problem (not verified), as they would fail the
    restore."""
    config = backup_config(settings)
    entry = mf.entry_for(Path(path).resolve())
    manifest = entry.manifest
    result = VerifyResult(entry.path)
    if manifest.get("sha256"):
        emit(on_event, Event(kind="verify_step", message="checksum"))
        actual = mf.sha256_of(entry.path)
        result.checksum_ok = actual == manifest["sha256"]
        if not result.checksum_ok:
            result.problems.append(f"sha256 is {actual[:16]}…, the manifest says "
                                   f"{manifest['sha256'][:16]}…: the file changed or is "
                                   "truncated")
    else:
        result.problems.append("no manifest beside the backup: the checksum cannot be checked")
    url = database_url or settings.database_url
    major = None
    if restore_test:
        if manifest.get("options", {}).get("data_only"):
            raise UsageError("a --data-only backup cannot be restore-tested on its own: "
                             "verify it without --restore-test")
        if not url:
            settings.require_database_url()
        with connect(url or "") as conn:
            major = catalog.server_major(conn)
    restore = pg.tool(config, "pg_restore", pg.at_least(major, pg.archive_major(manifest)))
    emit(on_event, Event(kind="verify_step", message="reading the archive"))
    _read_archive(restore, entry.path, result)
    if restore_test and result.archive_ok and result.checksum_ok is not False:
        emit(on_event, Event(kind="verify_step", message="restore test"))
        try:
            with clients.sigterm_as_interrupt("verify stopped; the scratch database was "
                                              "dropped"):
                result.restore_test = _restore_test(restore, entry.path, manifest,
                                                    url or "", no_owner, on_event)
        except OwnerRoleMissing as exc:
            result.problems.append(f"the restore test (restoring as umbau restore does) "
                                   f"cannot run: {exc}")
    if manifest:
        _record(entry, result)
    return result


def _read_archive(restore: Any, path: Path, result: VerifyResult) -> None:
    """``pg_restore --list`` (the table of contents), then a full read into /dev/null,
    which decompresses every data block and so catches truncation."""
    code, out, err = pg.capture(restore, ["--list", str(path)])
    if code != 0:
        result.problems.append("the archive's table of contents cannot be read: "
                               f"{pg.first_error(err.splitlines())}")
        return
    result.entries = sum(1 for line in out.splitlines() if line and not line.startswith(";"))
    try:
        pg.run_checked(restore, ["--file", "/dev/null", str(path)], "pg_restore (full read)")
    except BackupFailed as exc:
        result.problems.append(f"the archive cannot be read to the end: {exc}")
        return
    result.archive_ok = True


def _restore_test(restore: PgTool, path: Path, manifest: dict[str, Any], url: str,
                  no_owner: bool, on_event: EventHandler | None) -> RestoreTest:
    """Restore into a scratch database with the options ``restore`` uses (owners
    included unless ``no_owner``), then compare row counts and revision."""
    with connect(url) as conn:
        major = catalog.server_major(conn)
        if not no_owner:
            check_owners(conn, archive_owners(restore, path), describe(normalize_url(url)))
    name = f"umbau_verify_{uuid.uuid4().hex[:12]}"
    try:
        scratch.create_database(url, name, template="template0")
    except sa.exc.DBAPIError as exc:
        raise BackupFailed(f"cannot create the scratch database {name}: "
                           f"{describe_error(exc)}: grant CREATEDB or pass --database a URL "
                           "of a server where you may") from exc
    test = RestoreTest(name)
    scratch_url = scratch.database_url(url, name)
    try:
        conninfo, env = clients.conninfo(scratch_url, major)
        # restore's defaults: one transaction, owners unless no_owner.
        args = restore_args(conninfo, directory=path.is_dir(), jobs=None, clean=False,
                            no_owner=no_owner)
        started = time.monotonic()
        pg.run_checked(restore, [*args, str(path)], "pg_restore (restore test)", env=env)
        test.duration_s = time.monotonic() - started
        emit(on_event, Event(kind="verify_step", message="comparing row counts",
                             duration=test.duration_s))
        _compare(scratch_url, manifest, test)
    finally:
        scratch.drop_database(url, name)
    return test


def _compare(scratch_url: str, manifest: dict[str, Any], test: RestoreTest) -> None:
    expected: dict[str, dict[str, Any]] = manifest.get("tables") or {}
    with connect(scratch_url) as conn:
        actual = catalog.exact_counts(conn, list(expected))
        for key, want in expected.items():
            got = actual.get(key)
            ok = got is not None and (got == want["rows"] or not want.get("exact", True))
            test.tables[key] = {"expected": want["rows"], "actual": got,
                                "exact": want.get("exact", True), "ok": ok}
        # Only when the dump holds the version table's rows: a backup without them
        # (--table, --exclude-table, a version table kept elsewhere) cannot show it.
        if VERSION_TABLE in expected:
            test.revision_expected = list(manifest.get("revision") or [])
            test.revision_actual = list(catalog.version_table_revisions(conn))


def _record(entry: mf.BackupEntry, result: VerifyResult) -> None:
    """Write the outcome into the manifest (atomically), keeping earlier ones."""
    data = dict(entry.manifest)
    record = result.as_dict()
    data["verification"] = record
    data["verifications"] = [*data.get("verifications", []), record][-20:]
    mf.write_json(entry.manifest_file, data)
    entry.manifest = data
