"""The core commands: init, new, config, status, check, history, show, heads, current,
upgrade, downgrade, stamp, merge, doctor, demo."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from umbau.cli import FORMAT, State, cli, pass_state, render
from umbau.errors import ConfirmationRequired
from umbau.events import Event, EventHandler


def _emit(fmt: str, data: Any) -> bool:
    """JSON output when asked; returns True when it printed."""
    if fmt == "json":
        render.as_json(data.as_dict())
        return True
    return False


@cli.command()
@click.argument("folder", required=False, type=click.Path(path_type=Path))
@click.option("--directory", default="migrations", show_default=True,
              help="Folder of env.py and versions/.")
@FORMAT
@pass_state
def init(state: State, folder: Path | None, directory: str, fmt: str) -> None:
    """Create an Alembic environment that shares umbau's connection."""
    from umbau.commands.init import init as run

    result = run(state.settings, folder, directory=directory, metadata=state.flags.get("metadata"))
    if _emit(fmt, result):
        return
    for path in result.created:
        render.line(f"created {path}")
    if result.existing_project and not result.env_shares_connection:
        render.line("env.py does not use the connection umbau hands over. In "
                         "run_migrations_online(), before creating an engine, add:\n")
        render.line(result.lines_to_add or "")
    elif result.existing_project:
        render.line("existing Alembic project: env.py already shares the connection")


@cli.command()
@click.argument("message", required=False, default="")
@click.option("--autogenerate", is_flag=True, help="Compare the models with the database.")
@click.option("--head", default="head", show_default=True, help="Parent revision.")
@click.option("--rev-id", help="Revision id instead of a random one.")
@click.option("--expand", "expand_spec", metavar="SPEC",
              help='Write an expand and a (post-deploy) contract revision: "rename '
                   'TABLE.OLD TABLE.NEW" or "type TABLE.COLUMN TYPE".')
@FORMAT
@pass_state
def new(state: State, message: str, autogenerate: bool, head: str, rev_id: str | None,
        expand_spec: str | None, fmt: str) -> None:
    """Write a new revision file YYYYMMDD_HHMM_<slug>.py."""
    if expand_spec is not None:
        from umbau.ops.scaffold import write_expand

        written = write_expand(state.settings, expand_spec, head=head)
        if not _emit(fmt, written):
            for part in (written.expand, written.contract):
                render.line(f"created {part.revision} ({part.phase}): {part.path}")
        return
    from umbau.commands.new import new as run

    result = run(state.settings, message, autogenerate=autogenerate, head=head, rev_id=rev_id)
    if not _emit(fmt, result):
        render.line(f"created {result.revision}: {result.path}")


@cli.group("config", invoke_without_command=True)
@FORMAT
@pass_state
@click.pass_context
def config_cmd(ctx: click.Context, state: State, fmt: str) -> None:
    """Print the effective settings and where each came from."""
    if ctx.invoked_subcommand is not None:
        return
    from umbau.commands.config import show_config

    result = show_config(state.settings)
    if _emit(fmt, result):
        return
    render.line(f"settings file: {result.settings_file or '(none found)'}")
    render.table(None, ["key", "value", "source"], [list(r) for r in result.rows])


@config_cmd.command("migrate-env")
@click.argument("env_file", type=click.Path(path_type=Path))
@click.option("--release", "version", required=True, help="The release whose env step to run.")
@click.option("--plan", "plan_file", type=click.Path(path_type=Path),
              help="A releases.toml to read (default: beside the settings file).")
@click.option("--dry-run", is_flag=True, help="Show the changes; write nothing.")
@FORMAT
@pass_state
def migrate_env_cmd(state: State, env_file: Path, version: str, plan_file: Path | None,
                    dry_run: bool, fmt: str) -> None:
    """Rename, remove and add keys in ENV_FILE as release VERSION's env step does."""
    from umbau.release import migrate_env_for_release

    result = migrate_env_for_release(state.settings, env_file, version, plan_file=plan_file,
                                     dry_run=dry_run)
    if _emit(fmt, result):
        return
    for change in result.changes:
        render.line(change)
    what = "would change" if dry_run else ("changed" if result.changed else "already as asked")
    kept = f"; the old file is kept as {result.backup_path}" if result.backup_path else ""
    render.line(f"{env_file}: {what}{kept}")


def _render_status(result: Any) -> None:
    current = ", ".join(f"{c} ({result.messages.get(c, '?')})" for c in result.current) or "(empty)"
    heads = ", ".join(result.heads) or "(no revisions)"
    render.line(f"database : {current}")
    render.line(f"head(s)  : {heads}")
    render.line(f"state    : {result.state}: {result.summary()}")
    if result.pending:
        render.table("pending, in order", ["revision", "phase", "message"],
                     [[s.revision, result.phases.get(s.revision, "pre"), s.message]
                      for s in result.pending])
    if result.last_run:
        run = result.last_run
        render.line(f"last run : {run.direction} {run.revision} {run.outcome} at "
                         f"{run.finished_at:%Y-%m-%d %H:%M:%S} by {run.db_user}@{run.host}")


@cli.command()
@FORMAT
@pass_state
def status(state: State, fmt: str) -> None:
    """Current revision(s), head(s), pending revisions, last run."""
    from umbau.commands.status import status as run

    result = run(state.settings)
    if not _emit(fmt, result):
        _render_status(result)


@cli.command()
@click.option("--phase", type=click.Choice(["pre"]),
              help="pre: exit 0 also when only post-deploy revisions are pending.")
@FORMAT
@pass_state
def check(state: State, phase: str | None, fmt: str) -> int:
    """Exit 0 at the single head, 3 with revisions pending, 4 on multiple heads or an
    unknown database revision."""
    from umbau.commands.status import check as run

    result = run(state.settings, phase=phase)
    if not _emit(fmt, result):
        render.line(f"{result.state}: {result.summary()}")
    return result.exit_code


@cli.command()
@click.option("--runs", is_flag=True, help="Show umbau_history: every step that ran.")
@click.option("--limit", type=int, help="At most this many runs.")
@FORMAT
@pass_state
def history(state: State, runs: bool, limit: int | None, fmt: str) -> None:
    """The revisions, oldest first; with --runs, the recorded runs, newest first."""
    from umbau.commands.info import history as run

    result = run(state.settings, runs=runs, limit=limit)
    if _emit(fmt, result):
        return
    if runs:
        render.table("runs (newest first)",
                     ["finished", "direction", "revision", "outcome", "attempts", "ms", "by",
                      "error"],
                     [[f"{r.finished_at:%Y-%m-%d %H:%M:%S}", r.direction, r.revision, r.outcome,
                       r.attempts, f"{r.duration_ms:.0f}", f"{r.db_user}@{r.host}", r.error]
                      for r in result.runs or []])
        return
    rows = []
    for r in result.revisions:
        marks = []
        if r.revision in result.current:
            marks.append("current")
        if r.is_head:
            marks.append("head")
        if r.is_merge:
            marks.append("merge")
        rows.append([r.revision, ",".join(r.down_revisions) or "<base>", r.message,
                     " ".join(marks)])
    render.table(None, ["revision", "down", "message", ""], rows)


@cli.command()
@click.argument("revision")
@FORMAT
@pass_state
def show(state: State, revision: str, fmt: str) -> None:
    """One revision: parents, file, docstring, checksum, applied or not."""
    from umbau.commands.info import show as run

    result = run(state.settings, revision)
    if _emit(fmt, result):
        return
    r = result.revision
    applied = {True: "yes", False: "no", None: "unknown"}[result.applied]
    for key, value in [("revision", r.revision), ("down", ", ".join(r.down_revisions) or "<base>"),
                       ("path", r.path), ("sha256", result.checksum), ("applied", applied)]:
        render.line(f"{key:<9}: {value}")
    render.line("")
    render.line(result.doc)


@cli.command()
@FORMAT
@pass_state
def heads(state: State, fmt: str) -> None:
    """The head revision(s) of the scripts."""
    from umbau.commands.info import heads as run

    result = run(state.settings)
    if not _emit(fmt, result):
        for h in result.heads:
            render.line(f"{h.revision} (head)  {h.message}")


@cli.command()
@FORMAT
@pass_state
def current(state: State, fmt: str) -> None:
    """The revision(s) the database is at."""
    from umbau.commands.info import current as run

    result = run(state.settings)
    if _emit(fmt, result):
        return
    if not result.current:
        render.line("(empty: no revision applied)")
    for c in result.current:
        if isinstance(c, str):
            render.line(f"{c} (unknown to the scripts: run `umbau doctor`)")
        else:
            render.line(f"{c.revision}  {c.message}")


def _render_migrate(result: Any) -> None:
    if not result.steps:
        render.line(f"nothing to do: the database is at {', '.join(result.after) or 'base'}")
        return
    total = sum(s.duration for s in result.steps)
    render.line(f"{result.direction}: {len(result.steps)} step(s) in {total:.2f}s, "
                     f"{result.retries} retries; now at {', '.join(result.after) or 'base'}")


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("target", default="head")
@click.option("--sql", is_flag=True, help="Print the SQL instead of running it (FROM:TO allowed).")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@click.option("--allow-unsafe/--no-allow-unsafe", default=None,
              help="Run even when `umbau lint` finds error-level findings "
                   "(default: lint.allow_unsafe).")
@click.option("--backup", "backup_policy", type=click.Choice(["always", "destructive", "never"]),
              help="Back up first (default: backup.before_upgrade, destructive).")
@click.option("--rollback", type=click.Choice(["none", "restore"]),
              help="restore: restore that backup when a revision fails in a way its "
                   "transaction cannot undo.")
@click.option("--cancel-blockers", "cancel_after", type=click.IntRange(min=1), metavar="N",
              help="After N lock-timeout retries of a revision, pg_cancel_backend the "
                   "sessions that block it (default: never).")
@click.option("--retry-partial", is_flag=True,
              help="Rerun a revision recorded as partially applied (after undoing its "
                   "committed part by hand).")
@click.option("--phase", type=click.Choice(["pre", "post"]),
              help="pre: stop before the first post-deploy revision; post: the rest.")
@FORMAT
@pass_state
def upgrade(state: State, target: str, sql: bool, quiet: bool, fmt: str,
            allow_unsafe: bool | None, backup_policy: str | None,
            rollback: str | None, cancel_after: int | None, retry_partial: bool,
            phase: str | None) -> None:
    """Apply revisions up to TARGET (default: head), one transaction per revision."""
    from umbau.commands import migrate

    if sql and phase:
        from umbau.errors import UsageError

        raise UsageError("--phase needs the database; with --sql render a range FROM:TO")
    if cancel_after is not None:
        state.override_section("upgrade", cancel_blockers_after=cancel_after)
    if retry_partial:
        state.override_section("upgrade", retry_partial=True)

    if sql:
        sql_result = migrate.upgrade_sql(state.settings, target)
        if not _emit(fmt, sql_result):
            click.echo(sql_result.sql, nl=False)
        return
    with render.progress(enabled=fmt == "text", quiet=quiet) as handler:
        result = migrate.upgrade(state.settings, target, on_event=handler,
                                 allow_unsafe=allow_unsafe, backup=backup_policy,
                                 rollback=rollback, phase=phase)
    if not _emit(fmt, result):
        _render_migrate(result)


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("target")
@click.option("--yes", "-y", is_flag=True, help="Confirm a downgrade that drops data.")
@click.option("--sql", is_flag=True, help="Print the SQL of FROM:TO instead of running it.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@click.option("--retry-partial", is_flag=True,
              help="Rerun a revision recorded as partially applied (after undoing its "
                   "committed part by hand).")
@FORMAT
@pass_state
def downgrade(state: State, target: str, yes: bool, sql: bool, quiet: bool, fmt: str,
              retry_partial: bool) -> None:
    """Revert to TARGET: -1, a revision, or base (drops need --yes)."""
    from umbau.commands import migrate

    if retry_partial:
        state.override_section("upgrade", retry_partial=True)

    if sql:
        sql_result = migrate.downgrade_sql(state.settings, target)
        if not _emit(fmt, sql_result):
            click.echo(sql_result.sql, nl=False)
        return

    def confirm(preview: migrate.DowngradePreview) -> bool:
        if not (sys.stderr.isatty() and sys.stdin.isatty()):
            return False
        render.line("This downgrade drops data:", stderr=True)
        for line in preview.describe() or [f"every revision down to {preview.target}"]:
            render.line(f"  - {line}", stderr=True)
        return click.confirm("Go ahead?", default=False, err=True)

    try:
        with render.progress(enabled=fmt == "text", quiet=quiet) as handler:
            result = migrate.downgrade(state.settings, target, yes=yes, confirm=confirm,
                                       on_event=handler)
    except ConfirmationRequired:
        raise
    if not _emit(fmt, result):
        _render_migrate(result)


@cli.command()
@click.argument("revision")
@click.option("--purge", is_flag=True, help="Empty the version table first (unknown revision).")
@FORMAT
@pass_state
def stamp(state: State, revision: str, purge: bool, fmt: str) -> None:
    """Set the version table to REVISION without running migrations."""
    from umbau.commands.migrate import stamp as run

    result = run(state.settings, revision, purge=purge)
    if not _emit(fmt, result):
        render.line(f"stamped: now at {', '.join(result.after) or 'base'}")


@cli.command()
@click.option("--revision", help="Stamp this revision without comparing schemas.")
@click.option("--yes", "-y", is_flag=True, help="Stamp without asking.")
@FORMAT
@pass_state
def baseline(state: State, revision: str | None, yes: bool, fmt: str) -> None:
    """Adopt a database that has tables but no version table: find the revision whose
    schema it has (newest first, on a throwaway database) and stamp it."""
    from umbau.commands.baseline import BaselineResult
    from umbau.commands.baseline import baseline as run

    def confirm(found: BaselineResult) -> bool:
        if not (sys.stderr.isatty() and sys.stdin.isatty()):
            return False
        how = "its schema matches" if found.matched else "named with --revision"
        return click.confirm(f"Stamp revision {found.revision} ({how})?", default=False,
                             err=True)

    result = run(state.settings, revision=revision, yes=yes, confirm=confirm)
    if not _emit(fmt, result):
        how = "its schema matches the database" if result.matched else "as named"
        render.line(f"stamped {result.revision} ({how}): now at "
                    f"{', '.join(result.after) or 'base'}")


@cli.command()
@click.argument("revisions", nargs=-1)
@click.option("-m", "--message", required=True, help="Message of the merge revision.")
@FORMAT
@pass_state
def merge(state: State, revisions: tuple[str, ...], message: str, fmt: str) -> None:
    """Merge REVISIONS (default: all heads) into one head."""
    from umbau.commands.migrate import merge as run

    result = run(state.settings, message, list(revisions) or None)
    if not _emit(fmt, result):
        render.line(f"created merge {result.revision} of {', '.join(result.down_revisions)}:"
                         f" {result.path}")


@cli.command()
@FORMAT
@pass_state
def doctor(state: State, fmt: str) -> int:
    """Find multiple heads, unknown revisions, drift, invalid indexes, edited files,
    failed runs. Exit 1 when anything is found."""
    from umbau.commands.doctor import doctor as run

    result = run(state.settings)
    if _emit(fmt, result):
        return result.exit_code
    if not result.findings:
        render.line(f"no problems found (checked: {', '.join(result.checked)})")
    for finding in result.findings:
        render.line(f"[{finding.severity}] {finding.code}: {finding.message}")
        if finding.fix:
            render.line(f"    fix: {finding.fix}")
    return result.exit_code


@cli.command()
@click.option("--keep", is_flag=True, help="Leave the server running and print its URL.")
@click.option("--orders", type=click.IntRange(min=1), help="Orders to generate, at least 1 "
              "(default 100,000; with --release 10,000).")
@click.option("--folder", type=click.Path(file_okay=False, path_type=Path),
              help="Where the embedded server keeps its data (default .umbau/demo).")
@click.option("--release", "release", is_flag=True,
              help="Run the Etsy release 1.0.0 -> 1.1.0 with `umbau release` (backup, "
                   "migrate, env rename, service restart, health, smoke).")
@click.option("--fail-smoke", is_flag=True,
              help="With --release: make the smoke test fail and watch the automatic "
                   "rollback (database back at 1.0.0, .env restored).")
@FORMAT
@pass_state
def demo(state: State, keep: bool, orders: int | None, folder: Path | None, release: bool,
         fail_smoke: bool, fmt: str) -> None:
    """Upgrade the Etsy example from 1.0.0 to head on an embedded PostgreSQL."""
    from umbau.commands.demo import demo as run
    from umbau.errors import UsageError
    from umbau.settings import load_settings

    settings = load_settings(environ={}, flags={})
    if fail_smoke and not release:
        raise UsageError("--fail-smoke goes with --release: umbau demo --release --fail-smoke")
    if release:
        _demo_release(settings, keep, 10_000 if orders is None else orders, folder,
                      fail_smoke, fmt)
        return
    orders = 100_000 if orders is None else orders

    def show(event: Event) -> None:  # the demo's partial results, as they come
        value = event.data
        if event.message == "rows":
            _render_rows(value)
        elif event.message in ("before", "between", "after"):
            _render_status(value)
        elif event.message == "runs":
            render.line("")
            render.table("run history (newest first)",
                         ["finished", "direction", "revision", "outcome", "attempts", "ms"],
                         [[f"{r.finished_at:%H:%M:%S}", r.direction, r.revision, r.outcome,
                           r.attempts, f"{r.duration_ms:.0f}"] for r in value.runs or []])

    with _demo_events(fmt, show) as on_event:
        result = run(settings, folder=folder, orders=orders, keep=keep, on_event=on_event)
    if _emit(fmt, result):
        return
    if result.upgrade:
        _render_migrate(result.upgrade)
    if keep:
        render.line(f"\nthe server keeps running: {result.url}")


@contextmanager
def _demo_events(fmt: str, show: Callable[[Event], None]) -> Iterator[EventHandler]:
    """The demos' event handler: ``result`` events (parts of the result as they come)
    drawn by ``show`` in text mode, every other event by the progress renderer."""
    with render.progress(enabled=fmt == "text", quiet=fmt == "json") as handler:
        def on_event(event: Event) -> None:
            if event.kind == "result":
                if fmt == "text":
                    show(event)
            else:
                handler(event)

        yield on_event


def _render_rows(counts: dict[str, int]) -> None:
    render.line("generated " + ", ".join(f"{k}: {v:,}" for k, v in counts.items()))


def _demo_release(settings: Any, keep: bool, orders: int, folder: Path | None,
                  fail_smoke: bool, fmt: str) -> None:
    """``umbau demo --release [--fail-smoke]``: the release run, drawn as it goes."""
    from umbau.commands.demo import demo_release

    def show(event: Event) -> None:
        value = event.data
        if event.message == "rows":
            _render_rows(value)
        elif event.message in ("before", "after"):
            _render_status(value)
        elif event.message == "release" and value.release is not None:
            run = value.release
            render.line("")
            render.table(f"release {run.version}: {run.outcome} (rollback method: "
                         f"{run.rollback_method})", ["#", "step", "kind", "outcome", "s"],
                         [[s.index + 1, s.name, s.kind, s.outcome,
                           "" if s.seconds is None else f"{s.seconds:.1f}"]
                          for s in run.steps])
            if value.error:
                render.line(f"exit {value.error['exit_code']}: {value.error['message']}")
        elif event.message == "env":
            if value.env_restored:
                render.line("\n.env restored: byte for byte as before the release")
            else:
                keys = value.env_keys
                render.line(f"\n.env migrated: {', '.join(keys['gone']) or 'nothing'} -> "
                            f"{', '.join(keys['new']) or 'nothing'} (value, comments, order "
                            "kept)")

    with _demo_events(fmt, show) as on_event:
        result = demo_release(settings, folder=folder, orders=orders, fail_smoke=fail_smoke,
                              keep=keep, on_event=on_event)
    if _emit(fmt, result):
        return
    if keep:
        render.line(f"\nthe server keeps running: {result.url}")
