"""``umbau backfill run | status | pause | resume | cancel``."""

from __future__ import annotations

from typing import Any

import click

from umbau.cli import FORMAT, State, cli, pass_state, render
from umbau.errors import BackfillError, UsageError


@cli.group()
def backfill() -> None:
    """Batched, resumable, parallel data migrations (exactly once per row)."""


def _summary(result: Any) -> None:
    if result.already_done:
        render.out.print(f"backfill {result.name} was already done "
                         f"({result.rows_total} rows)", markup=False)
    else:
        render.out.print(
            f"backfill {result.name}: {result.status}, {result.rows} rows in "
            f"{result.duration_s:.1f}s ({result.rate:,.0f} rows/s), {result.retries} retries, "
            f"{result.workers} worker(s)", markup=False)
    if result.verification is not None:
        v = result.verification
        verdict = "ok" if v.ok else f"{v.failing_rows} row(s) fail"
        render.out.print(f"verification `{v.predicate}`: {verdict}", markup=False)
    if result.status in {"paused", "cancelled"}:
        render.out.print(f"stopped: the backfill is {result.status}", markup=False)


def _run(state: State, spec: str, workers: int, restart: bool, fmt: str, quiet: bool,
         max_failed_batches: int | None = None) -> None:
    from umbau.backfill import load_backfill, run_backfill

    settings = state.settings
    definition = load_backfill(spec, settings.root)
    with render.progress(quiet=quiet or fmt != "text") as on_event:
        result = run_backfill(settings, definition, workers=workers, source=spec,
                              restart=restart, on_event=on_event,
                              max_failed_batches=max_failed_batches, handle_signals=True)
    if fmt == "json":
        render.as_json(result.as_dict())
    else:
        _summary(result)


@backfill.command("run")
@click.argument("spec")
@click.option("--workers", "-w", type=click.IntRange(min=1), default=1, show_default=True,
              help="Worker processes on this machine (others may join from elsewhere).")
@click.option("--dry-run", is_flag=True,
              help="Count the rows and time one sample batch that is rolled back.")
@click.option("--restart", is_flag=True,
              help="Forget the recorded state (cancelled, or a changed definition) first; "
                   "refused while a live worker runs it.")
@click.option("--max-failed-batches", type=click.IntRange(min=0), default=None,
              help="Failure budget: failed batches retried before the backfill fails "
                   "[default: backfill.max_failed_batches, 0].")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@FORMAT
@pass_state
def run_cmd(state: State, spec: str, workers: int, dry_run: bool, restart: bool,
            max_failed_batches: int | None, quiet: bool, fmt: str) -> None:
    """Run the backfill SPEC (module:attribute), or join/resume it."""
    if dry_run:
        from umbau.backfill import dry_run as run_dry
        from umbau.backfill import load_backfill

        result = run_dry(state.settings, load_backfill(spec, state.settings.root))
        if fmt == "json":
            render.as_json(result.as_dict())
            return
        estimate = "?" if result.estimate_s is None else f"{result.estimate_s:.1f}s"
        render.out.print(
            f"backfill {result.name} on {result.table} (key {', '.join(result.key)}): "
            f"{result.rows} rows to change; a sample batch changed {result.sample_rows} rows "
            f"in {result.sample_s * 1000:.0f} ms (rolled back); estimate {estimate} "
            "with one worker", markup=False)
        return
    _run(state, spec, workers, restart, fmt, quiet, max_failed_batches)


@backfill.command("status")
@click.argument("name", required=False)
@FORMAT
@pass_state
def status_cmd(state: State, name: str | None, fmt: str) -> None:
    """Show one backfill (with its chunks) or all of them."""
    from umbau.backfill import backfill_status

    found = backfill_status(state.settings, name)
    if fmt == "json":
        render.as_json([s.as_dict() for s in found])
        return
    if not found:
        render.out.print("no backfills recorded", markup=False)
        return
    rows = [[s.name, s.table, s.status, f"{s.rows_done}/{s.rows_total}",
             f"{s.chunks_done}/{len(s.chunks)}", s.retries, s.updated_at.isoformat(
                 timespec="seconds"), s.last_error or ""] for s in found]
    render.table(None, ["name", "table", "status", "rows", "chunks", "retries", "updated",
                        "last error"], rows)
    if name:
        s = found[0]
        if s.last_error_range:
            render.out.print(f"failed key range: {s.last_error_range}", markup=False)
        if s.held:
            render.out.print(f"batches held: {s.held}", markup=False)
        render.table(None, ["chunk", "from", "to", "checkpoint", "status", "rows", "owner"],
                     [[c.chunk, _key(c.lower_key), _key(c.upper_key), _key(c.checkpoint),
                       c.status, c.rows_done, c.owner or ""] for c in s.chunks])


def _key(value: list[str] | None) -> str:
    return "-" if value is None else ", ".join(value)


def _transition(state: State, fn_name: str, name: str, fmt: str) -> None:
    from umbau import backfill as api

    status = getattr(api, fn_name)(state.settings, name)
    if fmt == "json":
        render.as_json({"name": name, "status": status})
    else:
        render.out.print(f"backfill {name}: {status}", markup=False)


@backfill.command("pause")
@click.argument("name")
@FORMAT
@pass_state
def pause_cmd(state: State, name: str, fmt: str) -> None:
    """Stop the workers after their current batch; `resume` continues."""
    _transition(state, "pause", name, fmt)


@backfill.command("cancel")
@click.argument("name")
@FORMAT
@pass_state
def cancel_cmd(state: State, name: str, fmt: str) -> None:
    """Stop for good; rows already changed stay changed."""
    _transition(state, "cancel", name, fmt)


@backfill.command("resume")
@click.argument("name")
@click.option("--workers", "-w", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--no-run", is_flag=True, help="Only mark it running (workers elsewhere run it).")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@FORMAT
@pass_state
def resume_cmd(state: State, name: str, workers: int, no_run: bool, quiet: bool,
               fmt: str) -> None:
    """Mark a paused or failed backfill running and run it from its checkpoint."""
    from umbau.backfill import backfill_status, resume

    found = backfill_status(state.settings, name)[0]
    if not no_run:
        # Everything that can refuse comes before the backfill is marked running: a
        # resume that fails leaves it as it was (paused stays paused).
        _check_source(state, found)
    resume(state.settings, name)
    if no_run:
        _emit_status(name, "running", fmt)
        return
    assert found.source is not None  # checked above
    _run(state, found.source, workers, False, fmt, quiet)


def _check_source(state: State, found: Any) -> None:
    """The backfill's recorded module:attribute loads and declares the same change."""
    if not found.source:
        raise BackfillError(f"backfill {found.name} was not started by `umbau backfill run`: "
                            "run its module:attribute with `umbau backfill run` to continue")
    from umbau.backfill import load_backfill

    try:
        loaded = load_backfill(found.source, state.settings.root)
    except UsageError as exc:
        raise BackfillError(f"cannot load {found.source} ({exc}): run `umbau backfill run "
                            "module:attribute` from the project folder") from exc
    if loaded.name != found.name or loaded.fingerprint() != found.fingerprint:
        raise BackfillError(f"{found.source} now declares another backfill than {found.name} "
                            "was started with: restore it, or start the new one with "
                            "`umbau backfill run`")


def _emit_status(name: str, status: str, fmt: str) -> None:
    if fmt == "json":
        render.as_json({"name": name, "status": status})
    else:
        render.out.print(f"backfill {name}: {status}", markup=False)
