"""``umbau release plan | run | status | history``."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from umbau.cli import FORMAT, State, cli, pass_state, render
from umbau.errors import ReleaseFailed, ReleaseRollbackFailed

PLAN = click.option("--plan", "plan_file", type=click.Path(path_type=Path),
                    help="A releases.toml to read (default: beside the settings file).")


@cli.group()
def release() -> None:
    """Declarative release plans: run step by step, roll back by themselves, resume."""


@release.command("plan")
@click.argument("version")
@PLAN
@FORMAT
@pass_state
def plan_cmd(state: State, version: str, plan_file: Path | None, fmt: str) -> None:
    """Print the checklist of VERSION (Markdown), values filled in."""
    from umbau.release import release_plan

    result = release_plan(state.settings, version, plan_file)
    if fmt == "json":
        render.as_json(result.as_dict())
    else:
        click.echo(result.markdown)


def _steps_table(result: Any) -> None:
    render.table(None, ["#", "step", "kind", "outcome", "seconds", "note"],
                 [[s.index + 1, s.name, s.kind, s.outcome,
                   "" if s.seconds is None else f"{s.seconds:.1f}",
                   s.error or s.detail.get("undo", "")] for s in result.steps])


def _ask(step: Any) -> str:
    """The operator's choice for an interrupted step that is not safe to rerun."""
    if not sys.stdin.isatty():
        from umbau.errors import ConfirmationRequired

        raise ConfirmationRequired(
            f"the release was interrupted in step {step.name!r} ({step.kind}): rerun with "
            "--yes to run it again, or in a terminal to choose resume or rollback")
    answer: str = click.prompt(
        f"the release was interrupted in step {step.name!r} ({step.kind}); run it again "
        "(resume) or undo the completed steps (rollback)?",
        type=click.Choice(["resume", "rollback"]), err=True)
    return answer


@release.command("run")
@click.argument("version")
@PLAN
@click.option("--yes", "-y", "assume_yes", is_flag=True,
              help="Resume an interrupted step without asking.")
@click.option("--dry-run", is_flag=True, help="Check the plan and the database; change nothing.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@FORMAT
@pass_state
def run_cmd(state: State, version: str, plan_file: Path | None, assume_yes: bool,
            dry_run: bool, quiet: bool, fmt: str) -> None:
    """Run the release VERSION (or resume it, or finish its rollback)."""
    from umbau.release import run_release

    try:
        with render.progress(quiet=quiet or fmt != "text") as on_event:
            result = run_release(state.settings, version, plan_file=plan_file,
                                 assume_yes=assume_yes, dry_run=dry_run, on_event=on_event,
                                 environ=dict(os.environ), decide=_ask)
    except (ReleaseFailed, ReleaseRollbackFailed) as exc:
        if fmt == "json" and exc.result is not None:
            render.as_json({**exc.result.as_dict(),  # type: ignore[attr-defined]
                            "error": {"type": type(exc).__name__,
                                      "exit_code": exc.exit_code, "message": str(exc)}})
            raise click.exceptions.Exit(exc.exit_code) from exc
        if exc.result is not None:
            _steps_table(exc.result)
            for warning in exc.result.warnings:  # type: ignore[attr-defined]
                render.line(f"WARNING: {warning}", stderr=True)
        raise
    if fmt == "json":
        render.as_json(result.as_dict())
        return
    if result.outcome == "already released":
        render.line(f"release {version}: already released (run {result.run_id})")
        return
    _steps_table(result)
    if result.outcome == "dry run":
        render.line(f"release {version}: dry run: the checks passed; rollback would "
                    f"{result.rollback_method}")
        for warning in result.warnings:
            render.line(f"WARNING: {warning}", stderr=True)
    else:
        resumed = " (resumed)" if result.resumed else ""
        render.line(f"release {version}: released{resumed} in {result.seconds:.1f}s "
                    f"(run {result.run_id})")


@release.command("status")
@FORMAT
@pass_state
def status_cmd(state: State, fmt: str) -> None:
    """The newest run of each version and its steps."""
    from umbau.release import release_status

    result = release_status(state.settings)
    if fmt == "json":
        render.as_json(result.as_dict())
        return
    if result.lock_holder:
        render.line(f"running now: {result.lock_holder}")
    if not result.runs:
        render.line("no release has run on this database")
        return
    render.table("releases", ["version", "state", "run", "started", "host", "rollback"],
                 [[r["version"], r["state"], r["run_id"], r["started_at"][:19], r["host"],
                   r["rollback"]] for r in result.runs])
    newest = result.runs[0]["run_id"]
    render.table(f"steps of run {newest}", ["step", "kind", "outcome", "finished", "error"],
                 [[r.step_name, r.kind, r.outcome,
                   r.finished_at.isoformat()[:19] if r.finished_at else "", r.error or ""]
                  for r in result.steps if r.run_id == newest])


@release.command("history")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--version", "version", default=None, help="Only this release version.")
@FORMAT
@pass_state
def history_cmd(state: State, limit: int, version: str | None, fmt: str) -> None:
    """Every recorded step, newest first."""
    from umbau.release import release_history

    result = release_history(state.settings, limit=limit, version=version)
    if fmt == "json":
        render.as_json(result.as_dict())
        return
    if not result.rows:
        render.line("no release steps recorded")
        return
    render.table(None, ["id", "version", "run", "step", "kind", "outcome", "seconds", "host",
                        "error"],
                 [[r.id, r.version, r.run_id, r.step_name, r.kind, r.outcome,
                   "" if r.seconds is None else f"{r.seconds:.1f}", r.host or "",
                   r.error or ""] for r in result.rows])
