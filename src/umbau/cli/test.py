"""``umbau test``: the click command; the work is in :mod:`umbau.commands.test`."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import click

from umbau.cli import FORMAT, State, cli, pass_state, render
from umbau.testing.report import CHECK_TITLES, CHECKS, TestReport


@cli.command("test")
@click.option("--server", "server_url", metavar="URL",
              help="Create the throwaway database on this server (default: the embedded "
                   "PostgreSQL in a temporary folder).")
@click.option("--setup", metavar="FILE.sql|MODULE:FUNCTION",
              help="Run before the first revision (histories that start from a squashed schema).")
@click.option("--rows", "rows_per_table", type=click.IntRange(min=1), default=3,
              show_default=True,
              help="Generated rows per table and fill.")
@click.option("--skip", multiple=True, type=click.Choice(["stairway", "with-rows", "data",
                                                          "drift", "idempotent"]),
              help="Switch a check off (repeatable).")
@click.option("--junit-xml", "junit_xml", type=click.Path(path_type=Path),
              help="Also write a JUnit XML report to this path.")
@click.option("--timings", is_flag=True, help="Show the time of every step.")
@click.option("--no-lint", is_flag=True, help="Do not attach lint findings to the revisions.")
@FORMAT
@pass_state
def test_cmd(state: State, server_url: str | None, setup: str | None, rows_per_table: int,
             skip: tuple[str, ...], junit_xml: Path | None, timings: bool, no_lint: bool,
             fmt: str) -> int:
    """Prove on a throwaway database that every revision upgrades, downgrades and keeps
    the data; exit 1 naming the revision and the difference. Downgrades irreversible by
    design are listed apart and do not fail the run."""
    from umbau.commands.test import test as run
    from umbau.testing.stairway import TestOptions

    options = TestOptions(rows_per_table=rows_per_table, setup=setup, skip=frozenset(skip))
    with _sigterm_unwinds(), render.progress(fmt == "text", quiet=fmt == "json") as on_event:
        report = run(state.settings, server_url=server_url, options=options,
                     with_lint=not no_lint, on_event=on_event)
    if junit_xml is not None:
        junit_xml.write_text(report.junit_xml(), encoding="utf-8")
    if fmt == "json":
        render.as_json(report.as_dict())
    else:
        _render(report, timings)
    return report.exit_code


@contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """SIGTERM (a cancelled CI job) unwinds like Ctrl-C, so that the throwaway database
    is dropped; by default Python would die without running any cleanup."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _render(report: TestReport, timings: bool) -> None:
    for check in CHECKS:
        status = report.checks[check]
        mark = {"passed": "ok  ", "failed": "FAIL"}.get(status, "skip")
        extra = "" if status in {"passed", "failed"} else f" ({status})"
        render.out.print(f"{mark} {CHECK_TITLES[check]}{extra}", markup=False)
    for failure in report.failures:
        render.out.print(f"\n[{failure.check}] {failure.describe()}", markup=False)
    for item in report.irreversible:
        render.out.print(f"irreversible by design: {item.revision} ({item.reason})",
                         markup=False)
    for note in report.notes:
        render.out.print(f"note: {note}", markup=False)
    if timings:
        render.table("steps (ms)", ["revision", "upgrade", "downgrade", "upgrade again",
                                    "lint", "message"],
                     [[r.revision, _ms(r.upgrade_s), _ms(r.downgrade_s), _ms(r.reupgrade_s),
                       " ".join(sorted({f["rule"] for f in r.lint})), r.message]
                      for r in report.revisions])
    linted = sum(len(r.lint) for r in report.revisions)
    if linted:
        render.out.print(f"lint: {linted} finding(s) in the revisions (details: umbau lint)",
                         markup=False)
    slowest = max(report.revisions, key=lambda r: r.upgrade_s or 0, default=None)
    summary = f"\n{len(report.revisions)} revisions in {report.duration_s:.1f}s"
    if slowest is not None and slowest.upgrade_s is not None:
        summary += f", slowest upgrade {slowest.revision} ({_ms(slowest.upgrade_s)} ms)"
    summary += ": all checks passed" if report.ok else f": {len(report.failures)} failure(s)"
    render.out.print(summary, markup=False)


def _ms(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds * 1000:.0f}"
