"""The backup commands: backup (+ verify), backups list/prune, restore, copy."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from umbau.cli import FORMAT, State, cli, pass_state, render
from umbau.errors import EXIT_BACKUP_CORRUPT


def _size(n: Any) -> str:
    if not isinstance(n, int):
        return "?"
    value = float(n)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


@cli.group(invoke_without_command=True)
@click.option("--dump-format", type=click.Choice(["custom", "directory"]),
              help="pg_dump format (default: backup.format, custom).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "custom", "directory"]),
              default="text", show_default=True,
              help="Output format (custom/directory: the old spelling of --dump-format).")
@click.option("--jobs", "-j", type=int, help="Parallel jobs (directory format).")
@click.option("--schema-only", is_flag=True, help="Only the schema.")
@click.option("--data-only", is_flag=True, help="Only the data.")
@click.option("--table", "-t", "tables", multiple=True,
              help="Only this table, SQL syntax: app.orders, app.\"Orders\" (repeatable).")
@click.option("--exclude-table", "-T", "excludes", multiple=True,
              help="Leave out this table (repeatable).")
@click.option("--dir", "directory", type=click.Path(path_type=Path),
              help="Backup folder (default: backup.dir, ./backups).")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@click.option("--json", "as_json", is_flag=True, hidden=True, help="Same as --format json.")
@click.pass_context
def backup(ctx: click.Context, dump_format: str | None, fmt: str, jobs: int | None,
           schema_only: bool, data_only: bool, tables: tuple[str, ...],
           excludes: tuple[str, ...], directory: Path | None, quiet: bool,
           as_json: bool) -> None:
    """Back up the database: pg_dump plus a manifest (checksum, revision, row counts)."""
    if ctx.invoked_subcommand is not None:
        return
    from umbau.backup.config import backup_config
    from umbau.backup.dump import DumpOptions
    from umbau.backup.dump import backup as run

    if fmt in ("custom", "directory"):  # before --dump-format, --format named the dump's
        dump_format, fmt = dump_format or fmt, "text"
    as_json = as_json or fmt == "json"
    state = ctx.find_object(State)
    assert state is not None  # the cli group sets it
    settings = state.settings
    config = backup_config(settings)
    chosen = dump_format or config.format
    options = DumpOptions(format=chosen,
                          jobs=jobs or (config.jobs if chosen == "directory" else 1),
                          schema_only=schema_only, data_only=data_only, tables=tables,
                          exclude_tables=excludes)
    with render.progress(quiet=quiet or as_json) as handler:
        result = run(settings, options, directory=directory, on_event=handler)
    if as_json:
        render.as_json(result.as_dict())
        return
    _print_backup(result)


def _print_backup(result: Any) -> None:
    m = result.manifest
    estimated = sum(1 for t in m["tables"].values() if not t["exact"])
    for path in result.cleaned:
        render.line(f"removed {path.name}: left by a backup that was killed")
    render.line(f"backup {result.path}\n  revision {', '.join(m['revision']) or 'base'}, "
                     f"{_size(m['size'])}, {len(m['tables'])} table(s)"
                     f"{f' ({estimated} counts estimated)' if estimated else ''}, "
                     f"{m['duration_s']:.1f}s\n  sha256 {m['sha256']}\n"
                     f"  not verified yet: umbau backup verify {result.path} --restore-test")


@backup.command("verify")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--restore-test", is_flag=True,
              help="Restore into a scratch database and compare row counts and revision.")
@click.option("--database", "database_url", help="Server for the scratch database (URL).")
@click.option("--no-owner", is_flag=True,
              help="Restore-test without ownership, as restore --no-owner does.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@FORMAT
@pass_state
def verify_cmd(state: State, file: Path, restore_test: bool, database_url: str | None,
               no_owner: bool, quiet: bool, fmt: str) -> int:
    """Check a backup: checksum, a full read; with --restore-test, a real restore."""
    from umbau.backup.verify import verify

    with render.progress(quiet=quiet or fmt == "json") as handler:
        result = verify(state.settings, file, restore_test=restore_test,
                        database_url=database_url, no_owner=no_owner, on_event=handler)
    code = 0 if result.ok else EXIT_BACKUP_CORRUPT
    if fmt == "json":
        render.as_json(result.as_dict())
        return code
    checksum = {True: "ok", False: "MISMATCH", None: "not checked"}[result.checksum_ok]
    render.line(f"checksum: {checksum}; archive: "
                     f"{'ok' if result.archive_ok else 'UNREADABLE'} ({result.entries} entries)")
    test = result.restore_test
    if test is not None:
        bad = {k: v for k, v in test.tables.items() if not v["ok"]}
        revision = {True: "matches", False: "DIFFERS", None: "not in backup"}[test.revision_ok]
        render.line(f"restore test: restored in {test.duration_s:.2f}s, "
                         f"{len(test.tables)} table(s), {len(bad)} with other row counts; "
                         f"revision {revision}")
        for key, row in bad.items():
            render.line(f"  {key}: manifest {row['expected']}, restored {row['actual']}")
    for problem in result.problems:
        render.line(f"problem: {problem}")
    render.line("verified" if result.ok else "NOT verified: do not rely on this backup")
    return code


@cli.group()
def backups() -> None:
    """The backup folder: list, prune."""


@backups.command("list")
@click.option("--dir", "directory", type=click.Path(path_type=Path), help="Backup folder.")
@FORMAT
@pass_state
def list_cmd(state: State, directory: Path | None, fmt: str) -> None:
    """Backups, newest first: when, revision, size, verified."""
    from umbau.backup.prune import list_backups

    result = list_backups(state.settings, directory)
    if fmt == "json":
        render.as_json(result.as_dict())
        return
    rows = []
    for entry in result.backups:
        m = entry.manifest
        verified = "restore-tested" if entry.restore_tested else (
            "yes" if entry.verified else ("FAILED" if m.get("verification") else "no"))
        rows.append([f"{entry.created:%Y-%m-%d %H:%M:%S}Z", ", ".join(m.get("revision") or [])
                     or "base", _size(m.get("size")), m.get("format"), verified, entry.path.name])
    render.table(str(result.folder), ["created", "revision", "size", "format", "verified",
                                      "name"], rows)
    for item in result.incomplete:
        why = ("its backup was killed; the next backup removes it"
               if item in result.abandoned else "interrupted, or being written now")
        render.line(f"incomplete ({why}): {item.name}")


@backups.command("prune")
@click.option("--keep-days", type=float, default=30, show_default=True,
              metavar="DAYS",
              help="Delete backups older than this.")
@click.option("--keep-last", type=int, default=0, show_default=True,
              help="Always keep the newest N.")
@click.option("--dry-run", is_flag=True, help="Only say what would be deleted.")
@click.option("--dir", "directory", type=click.Path(path_type=Path), help="Backup folder.")
@FORMAT
@pass_state
def prune_cmd(state: State, keep_days: float, keep_last: int, dry_run: bool,
              directory: Path | None, fmt: str) -> None:
    """Delete old backups; never the newest verified one (safe for cron)."""
    from umbau.backup.prune import prune

    result = prune(state.settings, keep_days=keep_days, keep_last=keep_last,
                   dry_run=dry_run, directory=directory)
    if fmt == "json":
        render.as_json(result.as_dict())
        return
    verb = "would delete" if dry_run else "deleted"
    for d in result.decisions:
        render.line(f"{verb if not d.keep else 'keep':<12} {d.path.name}  ({d.reason})")
    for item in result.removed_incomplete:
        render.line(f"{verb:<12} {item.name}  (incomplete, older than a day)")
    render.line(f"{len(result.deleted)} backup(s) "
                     f"{'would be deleted' if dry_run else 'deleted'}, "
                     f"{len(result.decisions) - len(result.deleted)} kept")


@cli.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--database", "database_url", help="Target database URL (default: database_url).")
@click.option("--clean", is_flag=True, help="Drop and replace what the backup contains.")
@click.option("--yes", "-y", is_flag=True, help="Confirm --clean.")
@click.option("--jobs", "-j", type=int, help="Parallel jobs (directory format).")
@click.option("--no-owner", is_flag=True, help="Skip ownership and privileges.")
@click.option("--ignore-revision", is_flag=True,
              help="Restore a backup whose revision the scripts do not know.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@FORMAT
@pass_state
def restore(state: State, file: Path, database_url: str | None, clean: bool, yes: bool,
            jobs: int | None, no_owner: bool, ignore_revision: bool, quiet: bool,
            fmt: str) -> None:
    """Restore a backup; refuses a database with tables unless --clean --yes."""
    from umbau.backup.restore import restore as run
    from umbau.errors import OwnerRoleMissing

    def attempt(without_owner: bool) -> Any:
        with render.progress(quiet=quiet or fmt == "json") as handler:
            return run(state.settings, file, database_url=database_url, clean=clean,
                       yes=yes, jobs=jobs, no_owner=without_owner,
                       ignore_revision=ignore_revision, on_event=handler)

    try:
        result = attempt(no_owner)
    except OwnerRoleMissing as exc:
        # Refused before anything was touched: on a terminal, offer --no-owner right away.
        if fmt == "json" or not (sys.stdin.isatty() and sys.stderr.isatty()):
            raise
        render.line(str(exc), stderr=True)
        if not click.confirm("restore with --no-owner instead?", default=False,
                             err=True):
            raise
        result = attempt(True)
    if fmt == "json":
        render.as_json(result.as_dict())
        return
    render.line(f"restored {result.path.name} in {result.duration_s:.2f}s; the database "
                     f"is at revision {', '.join(result.revision) or 'base'}")
    if result.leftover_tables:
        render.line("tables not in the backup were left as they were: "
                         f"{', '.join(result.leftover_tables)}")
    for warning in result.warnings:
        render.line(f"warning: {warning}", stderr=True)


@cli.command("copy")
@click.option("--from", "source", required=True, help="Source database URL.")
@click.option("--to", "target", required=True, help="Target database URL (must be empty).")
@click.option("--table", "-t", "tables", multiple=True, help="Only this table (repeatable).")
@click.option("--anonymize", "rules", type=click.Path(path_type=Path),
              help="Anonymisation rules (TOML).")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@FORMAT
@pass_state
def copy_cmd(state: State, source: str, target: str, tables: tuple[str, ...],
             rules: Path | None, quiet: bool, fmt: str) -> None:
    """Copy a database into an empty one, anonymising columns on the source."""
    from umbau.backup.copy import copy

    with render.progress(quiet=quiet or fmt == "json") as handler:
        result = copy(state.settings, source, target, tables=tables,
                      rules_file=rules, on_event=handler)
    if fmt == "json":
        render.as_json(result.as_dict())
        return
    render.table(None, ["table", "rows", "s", "anonymised"],
                 [[t.table, t.rows, f"{t.duration_s:.2f}",
                   ", ".join(f"{c}={r}" for c, r in t.anonymised.items())]
                  for t in result.tables])
    render.line(f"copied {len(result.tables)} table(s) and {result.sequences} sequence(s) "
                     f"in {result.duration_s:.1f}s")
