"""``umbau fleet upgrade|backfill|status|check``: the same safe upgrade (or backfill)
across many databases."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from umbau.cli import FORMAT, State, cli, pass_state, render


def _split(values: tuple[str, ...]) -> tuple[str, ...]:
    """``--tags a,b --tags c`` and ``--databases "a b"`` alike: one tuple of words."""
    return tuple(word for value in values for word in re.split(r"[,\s]+", value) if word)


def _target_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed([
        click.option("--targets", "targets_file", type=click.Path(path_type=Path),
                     help="File of targets: one URL per line, or TOML [[targets]] with "
                          "name, url, tags."),
        click.option("--targets-query", help="SQL run on the control database that returns "
                                             "name, url[, tags]."),
        click.option("--url-template", help="URL with {name} (or whose database is "
                                            "replaced) for --databases."),
        click.option("--databases", multiple=True, help="Database names for --url-template "
                                                        "(repeat, or comma-separated)."),
        click.option("--tags", multiple=True, help="Only targets with all these tags."),
        click.option("--control-url", help="Database that keeps the fleet's runs, or "
                                           "'embedded' (default: umbau_fleet on the first "
                                           "target's server)."),
        click.option("--run", "run_id", help="Run ID: resume it, or join it with --worker."),
        FORMAT,
    ]):
        command = option(command)
    return command


def _options(state: State, targets_file: Path | None, targets_query: str | None,
             url_template: str | None, databases: tuple[str, ...], **flags: Any) -> Any:
    from umbau.fleet import TargetSource, fleet_options

    source = TargetSource(file=targets_file, query=targets_query, url_template=url_template,
                          databases=_split(databases))
    flags["tags"] = _split(flags.get("tags", ()))
    return fleet_options(state.settings, source, **flags)


@cli.group()
def fleet() -> None:
    """The same safe upgrade across many databases (one per tenant or shop)."""


def _run_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options of a run: workers, canary, failure budget, lease, output."""
    for option in reversed([
        _target_options,
        click.option("--parallel", type=int, help="Worker processes on this machine "
                                                  "(default 1)."),
        click.option("--canary", multiple=True,
                     help="K (the first K targets) or target names: done first; nothing "
                          "else starts if one fails."),
        click.option("--max-failures", type=int, help="Start no new target after this many "
                                                      "failed."),
        click.option("--max-failure-rate", help="The same as a share of the targets: 0.05 "
                                                "or 5%."),
        click.option("--worker", is_flag=True, help="Join run --run as one more worker "
                                                    "(creating it if it does not exist yet)."),
        click.option("--retry-failed", is_flag=True, help="With --run: try failed and "
                                                          "skipped targets again."),
        click.option("--lease", help="Lease of a claimed target, renewed while it runs "
                                     "(default 2min)."),
        click.option("--quiet", "-q", is_flag=True, help="No progress output."),
    ]):
        command = option(command)
    return command


def _run(state: State, run: Callable[..., Any], fmt: str, canary: tuple[str, ...],
         worker: bool, quiet: bool, lease: str | None, **flags: Any) -> int:
    """Build the options, run ``run(settings, options, on_event=...)``, render, exit."""
    from umbau.errors import UsageError
    from umbau.settings import parse_duration

    if worker and not flags.get("run_id"):
        raise UsageError("--worker joins a run: give its ID with --run (any name, the same "
                         "on every worker)")
    options = _options(state, canary=_split(canary), worker=worker,
                       lease=parse_duration(lease, key="--lease") if lease else None, **flags)
    silent = quiet or fmt == "json"
    with render.progress(enabled=fmt == "text", quiet=silent) as handler:
        # no handler, no progress queries against the control database (unless metrics or
        # JSON log lines want the events)
        wanted = not silent or render.observed()
        result = run(state.settings, options, on_event=handler if wanted else None)
    error = result.error()
    if fmt == "json":  # the summary carries exit_code and error: one JSON object on stdout
        render.as_json(result.as_dict())
        if error is None:
            return 0
        render.line(f"umbau: error: {error}", stderr=True)
        return int(error.exit_code)
    _render_upgrade(result)
    if error is not None:
        raise error
    return 0


@fleet.command("upgrade")
@click.argument("target", default="head")
@_run_options
@click.option("--allow-unsafe/--no-allow-unsafe", default=None,
              help="Run despite error-level lint findings (default: lint.allow_unsafe).")
@click.option("--backup", "backup_policy", type=click.Choice(["always", "destructive", "never"]),
              help="Back up each target first (default: backup.before_upgrade).")
@click.option("--rollback", type=click.Choice(["none", "restore"]),
              help="restore: restore a target's backup when its upgrade fails half-way.")
@pass_state
def upgrade_cmd(state: State, /, target: str, backup_policy: str | None,
                **flags: Any) -> int:
    """Upgrade every target to TARGET (default: head), canary first."""
    from umbau.fleet import upgrade

    return _run(state, upgrade, target=target, backup=backup_policy, **flags)


@fleet.command("backfill")
@click.argument("spec")
@_run_options
@pass_state
def backfill_cmd(state: State, /, spec: str, **flags: Any) -> int:
    """Run the backfill SPEC (module:attribute) on every target, canary first."""
    from umbau.fleet import backfill

    def run(settings: Any, options: Any, on_event: Any) -> Any:
        return backfill(settings, spec, options, on_event=on_event)

    return _run(state, run, **flags)


def _render_upgrade(result: Any) -> None:
    if result.run.kind == "backfill":
        render.table(f"fleet run {result.run.run_id}: backfill {result.run.backfill}",
                     ["target", "state", "rows", "s", "error"],
                     [[t.name, t.state, t.rows, "" if t.duration is None
                       else f"{t.duration:.2f}", t.error] for t in result.targets])
    else:
        render.table(f"fleet run {result.run.run_id} → {result.run.target_revision}",
                     ["target", "state", "before", "after", "steps", "s", "error"],
                     [[t.name, t.state, t.before_revision, t.after_revision, t.steps,
                       "" if t.duration is None else f"{t.duration:.2f}", t.error]
                      for t in result.targets])
    c = result.counts
    render.line(f"{c.done} done, {c.failed} failed, {c.skipped} skipped, "
                f"{c.pending + c.running} not upgraded, of {c.total}; {result.duration_s:.1f}s")


def _status(state: State, fmt: str, flags: dict[str, Any], check: bool) -> int:
    from umbau import fleet as library

    options = _options(state, **flags)
    result = (library.check if check else library.status)(state.settings, options)
    if fmt == "json":
        render.as_json(result.as_dict())
        return result.exit_code
    if not check:
        render.table(f"fleet run {result.run.run_id}" if result.run else "fleet (no run yet)",
                     ["target", "database", "current", "pending", "run state", "s", "error"],
                     [[t.name, t.database, ",".join(t.current) or "(empty)", t.pending,
                       t.run_state, "" if t.duration_s is None else f"{t.duration_s:.2f}",
                       t.error] for t in result.targets])
    render.line(result.summary())
    return int(result.exit_code)


@fleet.command("status")
@_target_options
@pass_state
def status_cmd(state: State, /, fmt: str, **flags: Any) -> int:
    """Per target: current revision (read from it), run state, duration, error."""
    return _status(state, fmt, flags, check=False)


@fleet.command("check")
@_target_options
@pass_state
def check_cmd(state: State, /, fmt: str, **flags: Any) -> int:
    """Exit 0 when every target is at the head; 3 pending; 4 unknown revision; 32 a
    target not reachable."""
    return _status(state, fmt, flags, check=True)
