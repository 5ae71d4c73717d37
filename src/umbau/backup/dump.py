"""``umbau backup``: pg_dump under a temporary name, row counts from the same snapshot,
a manifest beside it, renamed into place only when everything is complete."""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Connection

from umbau._version import __version__
from umbau.backup import manifest as mf
from umbau.backup import pg
from umbau.backup.config import BackupConfig, backup_config
from umbau.errors import InsufficientDiskSpace, UmbauError, UsageError
from umbau.events import Event, EventHandler, emit
from umbau.postgres import clients
from umbau.postgres import dumpcatalog as catalog
from umbau.postgres.connect import connect
from umbau.postgres.quoting import QualifiedName, parse_qualified
from umbau.settings import Settings

DiskFree = Callable[[Path], int]
_DUMPING = re.compile(r'dumping contents of table "?([^"]+)"?')


def disk_free(path: Path) -> int:
    return shutil.disk_usage(path).free


@dataclass
class BackupResult:
    """A finished backup: where it is, its manifest, and the leftovers of killed backups
    it removed from the folder first."""

    path: Path
    manifest_file: Path
    manifest: dict[str, Any] = field(default_factory=dict)
    cleaned: list[Path] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "manifest_file": str(self.manifest_file),
                "manifest": self.manifest, "cleaned": [str(p) for p in self.cleaned]}


@dataclass(frozen=True)
class DumpOptions:
    """What to dump and how."""

    format: str = "custom"
    jobs: int = 1
    schema_only: bool = False
    data_only: bool = False
    tables: tuple[str, ...] = ()
    exclude_tables: tuple[str, ...] = ()

    def check(self) -> None:
        if self.format not in ("custom", "directory"):
            raise UsageError(f"format {self.format!r}: use custom or directory")
        if self.schema_only and self.data_only:
            raise UsageError("--schema-only and --data-only exclude each other: pick one")
        if self.jobs > 1 and self.format != "directory":
            raise UsageError("--jobs needs --format directory (pg_dump dumps in parallel only "
                             "into a folder)")
        if self.jobs < 1:
            raise UsageError("--jobs must be 1 or more")

    def pg_dump_args(self) -> list[str]:
        args = ["--format", self.format]
        if self.jobs > 1:
            args += ["--jobs", str(self.jobs)]
        if self.schema_only:
            args.append("--schema-only")
        if self.data_only:
            args.append("--data-only")
        for table in self.tables:
            args += ["--table", table]
        for table in self.exclude_tables:
            args += ["--exclude-table", table]
        return args

    def as_dict(self) -> dict[str, Any]:
        return {"format": self.format, "jobs": self.jobs, "schema_only": self.schema_only,
                "data_only": self.data_only, "tables": list(self.tables),
                "exclude_tables": list(self.exclude_tables)}


def _pattern_matches(pattern: str, info: catalog.TableInfo) -> bool:
    """pg_dump's pattern rules, for the row counts: ``*`` and ``?`` are wildcards, a dot
    separates schema and table (no schema: the table in any schema), unquoted letters
    are folded to lower case, double quotes keep case and special characters."""
    parts: list[str] = [""]
    quoted = False
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == '"':
            if quoted and pattern[i + 1:i + 2] == '"':
                parts[-1] += '"'
                i += 1
            else:
                quoted = not quoted
        elif ch == "." and not quoted:
            parts.append("")
        elif ch in "*?" and not quoted:
            parts[-1] += ".*" if ch == "*" else "."
        else:
            parts[-1] += re.escape(ch if quoted else ch.lower())
        i += 1
    if len(parts) == 1:
        return re.fullmatch(parts[0], info.name) is not None
    schema, table = parts[-2], parts[-1]  # a database part in front is pg_dump's to check
    return (re.fullmatch(schema, info.schema) is not None
            and re.fullmatch(table, info.name) is not None)


def _matches(info: catalog.TableInfo, patterns: Sequence[str]) -> bool:
    return any(_pattern_matches(p, info) for p in patterns)


def _is_pattern(name: str) -> bool:
    """A pg_dump pattern: ``*`` or ``?`` outside double quotes."""
    return bool(re.search(r'[*?]', re.sub(r'"(?:[^"]|"")*"', "", name)))


def exact_names(infos: Sequence[catalog.TableInfo], names: Sequence[str], *,
                option: str, must_exist: bool) -> tuple[str, ...]:
    """``names`` in SQL identifier syntax resolved to quoted exact names for pg_dump (a
    missing one raises UsageError with "did you mean", when ``must_exist``); pg_dump
    patterns (``*``, ``?``) are passed on as they are."""
    out: list[str] = []
    for name in names:
        if _is_pattern(name):
            out.append(name)
        elif must_exist:
            out.append(catalog.resolve(infos, name, option=option).qualified)
        else:
            parsed = parse_qualified(name)
            out.append(QualifiedName(parsed.schema or "public", parsed.name).sql)
    return tuple(out)


def resolve_names(infos: Sequence[catalog.TableInfo], options: DumpOptions) -> DumpOptions:
    """``options`` with ``--table`` and ``--exclude-table`` names made exact."""
    return replace(options,
                   tables=exact_names(infos, options.tables, option="--table",
                                      must_exist=True),
                   exclude_tables=exact_names(infos, options.exclude_tables,
                                              option="--exclude-table", must_exist=False))


def selected_tables(infos: Sequence[catalog.TableInfo],
                    options: DumpOptions) -> list[catalog.TableInfo]:
    """The tables whose data the dump holds, matched as pg_dump matches ``--table`` and
    ``--exclude-table`` patterns."""
    if options.schema_only:
        return []
    chosen = [i for i in infos if not options.tables or _matches(i, options.tables)]
    return [i for i in chosen if not _matches(i, options.exclude_tables)]


def space_needed(config: BackupConfig, db_size: int, chosen: Sequence[catalog.TableInfo],
                 options: DumpOptions) -> int:
    """Bytes to insist on: the database (or chosen tables) times the factor, plus a margin."""
    if options.schema_only:
        return config.space_margin
    size = sum(i.bytes for i in chosen) if options.tables else db_size
    return int(size * config.space_factor) + config.space_margin


def check_space(folder: Path, needed: int, free_fn: DiskFree) -> None:
    free = free_fn(folder)
    if free < needed:
        raise InsufficientDiskSpace(
            f"not enough free disk in {folder}: {_mb(free)} free, {_mb(needed)} needed "
            "(database size x space_factor + space_margin): free space or pass --dir "
            "on a larger disk",
            needed, free,
        )


def _mb(n: int) -> str:
    return f"{n / 1024**2:,.1f} MiB"


def read_revision(settings: Settings, conn: Connection, url: str) -> tuple[str, ...]:
    """The database's revision: the version table read directly, or through env.py when
    the project keeps it elsewhere."""
    found = catalog.version_table_revisions(conn)
    if found or (settings.alembic_config is None and settings.script_location is None):
        return found
    try:
        from umbau.alembic_bridge import Project, current_heads

        with connect(url) as other:
            return current_heads(Project(settings, url), other)
    except UmbauError:
        return found


def backup(
    settings: Settings,
    options: DumpOptions | None = None,
    *,
    directory: Path | None = None,
    database_url: str | None = None,
    free_space: DiskFree = disk_free,
    reason: str = "manual",
    on_event: EventHandler | None = None,
) -> BackupResult:
    """Dump the database into the backup folder and write the manifest beside it.

    Interrupted (Ctrl-C, SIGTERM: :class:`~umbau.errors.Terminated`), nothing is left;
    killed (``kill -9``), pg_dump dies with umbau and the ``.partial`` it leaves is
    removed by the next backup into the folder (:func:`manifest.abandoned_partials`)."""
    with clients.sigterm_as_interrupt(_STOPPED):
        return _backup(settings, options, directory, database_url, free_space, reason,
                       on_event)


_STOPPED = "backup stopped; pg_dump was stopped and the partial backup removed"


def _clean_abandoned(folder: Path, on_event: EventHandler | None) -> list[Path]:
    """Remove the ``.partial`` leftovers of backups that were killed."""
    found = mf.abandoned_partials(folder)
    for path in found:
        _remove(path)
        emit(on_event, Event(kind="backup_cleaned", message=str(path)))
    return found


@dataclass(frozen=True)
class _Source:
    """What the backup learnt about the database before pg_dump starts."""

    major: int
    version: str
    options: DumpOptions
    chosen: list[catalog.TableInfo]
    revision: tuple[str, ...]


def _inspect(settings: Settings, conn: Connection, url: str, options: DumpOptions,
             config: BackupConfig, folder: Path, free_space: DiskFree) -> _Source:
    """Server version, tables, the free-space check and the revision."""
    infos = catalog.tables(conn)
    options = resolve_names(infos, options)
    chosen = selected_tables(infos, options)
    check_space(folder, space_needed(config, catalog.database_size(conn), chosen, options),
                free_space)
    return _Source(catalog.server_major(conn), catalog.server_version(conn), options,
                   chosen, read_revision(settings, conn, url))


def _backup(settings: Settings, options: DumpOptions | None, directory: Path | None,
            database_url: str | None, free_space: DiskFree, reason: str,
            on_event: EventHandler | None) -> BackupResult:
    config = backup_config(settings)
    options = options or DumpOptions(format=config.format, jobs=config.jobs)
    options.check()
    url = database_url or settings.require_database_url()
    folder = mf.secure_dir((directory or config.dir).resolve())
    cleaned = _clean_abandoned(folder, on_event)
    started = time.monotonic()
    created = datetime.now(UTC)
    database = pg.database_name(url)
    pg.start_finding(config, "pg_dump")  # their start-up overlaps connecting
    with connect(url) as conn:
        # One session and one snapshot for the catalog, the row counts and pg_dump: they
        # see the same database, and a backup opens one connection, not two.
        snap = conn.execution_options(isolation_level="REPEATABLE READ")
        source = _inspect(settings, snap, url, options, config, folder, free_space)
        tool = pg.tool(config, "pg_dump", source.major)
        final, partial = _reserve(folder, mf.backup_name(database, created, source.revision),
                                  options.format)
        lock = mf.hold(partial)
        mfile = mf.manifest_path(final)
        renamed = False
        try:
            emit(on_event, Event(kind="backup_start", message=str(final),
                                 total=len(source.chosen)))
            counts, timings = _dump(snap, url, source, tool, partial, config, on_event)
            snap.rollback()  # pg_dump is done with the snapshot: let it go
            _tighten(partial)
            clock = time.monotonic()
            checksum = mf.sha256_of(partial)
            timings["checksum_s"] = round(time.monotonic() - clock, 3)
            size = mf.size_of(partial)
            os.replace(partial, final)
            renamed = True
            duration = round(time.monotonic() - started, 3)
            manifest: dict[str, Any] = {
                "manifest_version": mf.MANIFEST_VERSION,
                "name": final.name.removesuffix(".dump"),
                "file": final.name,
                "database": database,
                "server_version": source.version,
                "revision": list(source.revision),
                "umbau_version": __version__,
                "created": created.isoformat(),
                "duration_s": duration,
                "timings": timings,
                "size": size,
                "sha256": checksum,
                "format": source.options.format,
                "options": source.options.as_dict(),
                "reason": reason,
                "pg_dump": tool.as_dict(),
                "tables": counts,
                "verification": None,
                "restores": [],
            }
            mf.write_json(mfile, manifest)
        except BaseException:
            # Every failure (Ctrl-C included) leaves nothing: no partial dump, no dump
            # without its manifest, no half-written manifest.
            _remove(partial)
            _remove(mfile.with_name(mfile.name + mf.PARTIAL))
            if renamed:
                _remove(final)
            raise
        finally:
            os.close(lock)
    emit(on_event, Event(kind="backup_done", message=str(final), duration=duration))
    return BackupResult(final, mfile, manifest, cleaned)


def _dump(snap: Connection, url: str, source: _Source, tool: Any, target: Path,
          config: BackupConfig, on_event: EventHandler | None,
          ) -> tuple[dict[str, dict[str, Any]], dict[str, float]]:
    """Run pg_dump on the snapshot ``snap``'s transaction exports while counting rows in
    that same snapshot, so the counts are exactly what the dump holds. Returns (counts,
    timings)."""
    conninfo, env = clients.conninfo(url, source.major)

    def on_line(line: str) -> None:
        match = _DUMPING.search(line)
        if match:
            emit(on_event, Event(kind="backup_table", message=match.group(1)))

    snapshot = catalog.export_snapshot(snap)
    args = [*source.options.pg_dump_args(), "--verbose", "--snapshot", snapshot,
            "--file", str(target), "--dbname", conninfo]
    clock = time.monotonic()
    proc = pg.run(tool, args, env=env, on_line=on_line)
    try:
        counts = catalog.row_counts(snap, source.chosen, config.exact_count_below)
        counted = time.monotonic() - clock
        pg.wait(proc, "pg_dump")
    except BaseException:
        pg.stop(proc)
        raise
    dumped = time.monotonic() - clock
    return counts, {"pg_dump_s": round(dumped, 3), "counts_s": round(counted, 3)}


def _reserve(folder: Path, name: str, fmt: str) -> tuple[Path, Path]:
    """(final path, partial path) for ``name``, or ``name-2`` … when a backup of the same
    second exists. The partial path is created here (exclusively, 0600/0700), so two
    backups started in the same second never write into the same file."""
    suffix = ".dump" if fmt == "custom" else ""
    n = 1
    while True:
        final = folder / (f"{name}{suffix}" if n == 1 else f"{name}-{n}{suffix}")
        partial = final.with_name(final.name + mf.PARTIAL)
        n += 1
        if final.exists() or mf.manifest_path(final).exists():
            continue
        try:
            if fmt == "custom":
                os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            else:
                partial.mkdir(mode=0o700)  # pg_dump writes into an existing empty folder
        except FileExistsError:
            continue
        return final, partial


def _tighten(path: Path) -> None:
    """Files 0600, folders 0700: a dump holds every row of the database."""
    if path.is_dir():
        os.chmod(path, 0o700)
        for item in path.rglob("*"):
            os.chmod(item, 0o700 if item.is_dir() else 0o600)
    else:
        os.chmod(path, 0o600)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()
