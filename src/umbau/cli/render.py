"""Rendering results and progress: rich text for people, plain text for pipes, JSON for
machines.

rich is imported only when a terminal is there to enjoy it (or a command asks for
``out``/``err``): ``umbau check`` in a readiness probe should not pay for it.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from umbau.events import Event, EventHandler
from umbau.masking import mask_secrets

if TYPE_CHECKING:
    from rich.console import Console

    out: Console
    err: Console

_consoles: dict[str, Any] = {}


def __getattr__(name: str) -> Any:
    """``out`` and ``err``: rich consoles for stdout and stderr, made on first use."""
    if name not in {"out", "err"}:
        raise AttributeError(name)
    if name not in _consoles:
        from rich.console import Console

        if name == "out":
            console = Console(highlight=False)
            if not console.is_terminal:
                console = Console(highlight=False, width=200)
        else:
            console = Console(stderr=True, soft_wrap=True, highlight=False)
        _consoles[name] = console
    return _consoles[name]


def line(text: str = "", *, stderr: bool = False) -> None:
    """One line of plain text (on stderr with ``--log-format json``: a JSON line of kind
    ``message``, so stderr stays JSON only)."""
    if stderr and JSON_LOG is not None:
        JSON_LOG(Event("message", message=text))
        return
    click.echo(mask_secrets(text), err=stderr)


def error(message: str) -> None:
    message = mask_secrets(message)
    if sys.stderr.isatty():
        from rich.markup import escape

        # escape: messages quote paths and `# umbau: ignore[rule-id]`, which are not markup
        __getattr__("err").print(f"[bold red]umbau: error:[/] {escape(message)}", markup=True,
                                 highlight=False)
    else:
        click.echo(f"umbau: error: {message}", err=True)


def as_json(data: Any) -> None:
    text = json.dumps(data, indent=2, default=str)
    sys.stdout.write(mask_secrets(text) + "\n")
    sys.stdout.flush()


def table(title: str | None, columns: list[str], rows: list[list[Any]]) -> None:
    cells = [["" if v is None else mask_secrets(str(v)) for v in row] for row in rows]
    if not sys.stdout.isatty():
        _plain_table(title, columns, cells)
        return
    from rich.table import Table

    tbl = Table(title=title, show_header=True, header_style="bold", box=None, pad_edge=False)
    for col in columns:
        tbl.add_column(col, overflow="fold")
    for row in cells:
        tbl.add_row(*row)
    __getattr__("out").print(tbl)


def _plain_table(title: str | None, columns: list[str], rows: list[list[str]]) -> None:
    widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(columns)]
    if title:
        click.echo(title)
    for row in [columns, *rows]:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
                   .rstrip())


# -- progress: the one renderer of umbau.events.Event ------------------------------------

LOG_EVERY = 5.0  # seconds between two plain lines of a counted operation (rows so far)

_TEMPLATES = {
    "backup_before_upgrade": "backing up before the upgrade ({message})",
    "backup_taken": "backup taken: {message}",
    "rollback_skipped": "not restoring: {message}",
    "rollback_restore": "revision {revision} failed: restoring {message}",
    "backup_start": "backing up into {message} ({total} table(s) with data)",
    "backup_table": "  dumped {message}",
    "verify_step": "{message}…",
    "restore_step": "{message}…",
    "copy_step": "{message}…",
    "copy_table": "  copying {message}",
    "stage": "\n== {message}",
    "invalid_index_dropped": "dropped the invalid index a failed concurrent build left: "
                             "{message}",
    "old_lock_holders": "warning: {message}",
    "note": "note: {message}",
    "fleet_target": "{message}",
    "release_step_start": "-> {message}",
}
# drawn above the bar too (the others only change the bar's description)
_ABOVE_THE_BAR = {"lock_wait", "retry", "step_done", "backup_before_upgrade", "backup_taken",
                  "rollback_skipped", "rollback_restore", "stage", "blockers_cancelled",
                  "invalid_index_dropped", "old_lock_holders", "note", "fleet_target",
                  "release_step_start", "release_step_done", "health_attempt"}
_ONE_DONE = {"step_done", "backup_table", "copy_table"}  # each advances the bar by one


def describe(event: Event) -> str | None:
    """The event as one line of text, or None for events that only move a bar."""
    template = _TEMPLATES.get(event.kind)
    if template is not None:
        return template.format(message=event.message, revision=event.revision,
                               total=event.total)
    if event.kind == "lock_wait":
        who = event.holder or "another session"
        return f"waiting for the migrator lock, held by {who} ({event.waited or 0:.0f}s so far)"
    if event.kind == "retry":
        blocked = f"; blocked by {event.holder}" if event.holder else ""
        return (f"retry {event.revision} in {event.delay:.1f}s (attempt {event.attempt} "
                f"failed: {event.error}{blocked})")
    if event.kind == "blockers_cancelled":
        return (f"cancelled the statements of the sessions blocking {event.revision}: "
                f"{event.holder}")
    if event.kind == "health_attempt":
        return (f"   health: {event.message}; again in {event.delay or 0:.1f}s "
                f"(attempt {event.attempt})")
    if event.kind == "release_step_done":
        outcome = (event.data or {}).get("outcome", "done")
        why = f": {event.error}" if event.error else ""
        return f"   {event.message}: {outcome} [{event.duration or 0:.1f}s]{why}"
    if event.kind == "step_done":
        return (f"{event.direction:<9} {event.revision}  {event.message or ''}  "
                f"[{(event.duration or 0) * 1000:.0f} ms]")
    if event.done is not None:
        return _counted(event)
    return None


def _counted(event: Event) -> str:
    """``backfill ocr_v2: 1200/5000 rows, 3,100 rows/s, ETA 2s``."""
    total = "?" if event.total is None else str(event.total)
    eta = "?" if event.eta is None else f"{event.eta:.0f}s"
    unit = event.unit or "done"
    return (f"{event.message}: {event.done}/{total} {unit}, {event.rate or 0:,.0f} {unit}/s, "
            f"ETA {eta}")


class _Lines:
    """Plain lines on stderr; a counted operation's lines at most every LOG_EVERY seconds."""

    def __init__(self) -> None:
        self.last = float("-inf")

    def __call__(self, event: Event) -> None:
        if event.done is not None:
            now = time.monotonic()
            if now - self.last < LOG_EVERY:
                return
            self.last = now
        text = describe(event)
        if text:
            click.echo(mask_secrets(text), err=True)


class _Bar:
    """A rich progress bar with rate and ETA; each counted phase (a new kind announcing a
    ``total``) starts it afresh, lines worth keeping are printed above it."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar
        self.task = bar.add_task("starting", total=None, rate="", eta="")
        self.phase: str | None = None
        self.unit = ""

    def __call__(self, event: Event) -> None:
        self._count(event)
        label = self._label(event)
        if label is not None:
            self.bar.update(self.task, description=label)
        text = describe(event) if event.kind in _ABOVE_THE_BAR else None
        if text:
            self.bar.console.print(mask_secrets(text.lstrip("\n")), markup=False)

    def _count(self, event: Event) -> None:
        if event.total is not None and event.kind != self.phase:
            self.bar.reset(self.task, total=event.total, rate="", eta="",
                           description=event.message or event.direction or event.kind)
            self.phase, self.unit = event.kind, event.unit or ""
        if event.done is not None:
            self.bar.update(self.task, completed=event.done, total=event.total)
        elif event.kind in _ONE_DONE:
            self.bar.advance(self.task)
        task = self.bar.tasks[0]
        speed = event.rate if event.rate is not None else task.speed
        if speed:
            unit = f" {self.unit}" if self.unit else ""
            self.bar.update(self.task, rate=f"{speed:,.0f}{unit}/s")
        eta = event.eta if event.eta is not None else task.time_remaining
        if eta is not None:
            self.bar.update(self.task, eta=f"ETA {_clock(eta)}")

    @staticmethod
    def _label(event: Event) -> str | None:
        if event.kind == "step_start":
            return f"{event.direction} {event.revision} {event.message or ''}"
        if event.kind in ("backup_table", "copy_table", "backfill_progress", "stage",
                          "fleet_progress") \
                or (event.message and event.kind.endswith("_step")):
            return event.message or ""
        return None


def _clock(seconds: float) -> str:
    """``0:01:05`` (h:mm:ss), as rich draws elapsed time."""
    whole = round(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


# Handlers fed every event of the command whatever the display shows (the metrics of
# --metrics-port/--pushgateway/--metrics-textfile); JSON_LOG (--log-format json) replaces
# the display. Set by umbau.cli._observe around one command, empty otherwise.
SINKS: list[EventHandler] = []
JSON_LOG: EventHandler | None = None


def observed() -> bool:
    """True when metrics or JSON log lines take the events even if nothing is drawn."""
    return bool(SINKS) or JSON_LOG is not None


@contextmanager
def progress(enabled: bool = True, quiet: bool = False) -> Iterator[EventHandler]:
    """The event handler of a command: a rich bar with rate and ETA on a terminal (when
    ``enabled``), plain lines on stderr otherwise, nothing when ``quiet``; with
    ``--log-format json`` one JSON line per event instead (even when ``quiet``: the lines
    were asked for). The metrics sinks (:data:`SINKS`) get every event in any case.

    rich's progress module is imported here, when a bar is drawn: ``umbau --help`` and
    commands in pipes do not pay for it.
    """
    extra = [*SINKS] if JSON_LOG is None else [JSON_LOG, *SINKS]
    if not extra:
        with _display(enabled, quiet) as handler:
            yield handler
        return
    if JSON_LOG is not None:
        yield _each(extra)
        return
    with _display(enabled, quiet) as handler:
        yield _each([*extra, handler])


def _each(handlers: list[EventHandler]) -> EventHandler:
    def handle(event: Event) -> None:
        for handler in handlers:
            handler(event)
    return handle


@contextmanager
def _display(enabled: bool, quiet: bool) -> Iterator[EventHandler]:
    if quiet:
        yield lambda event: None
        return
    if not (enabled and sys.stderr.isatty()):
        yield _Lines()
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                   TextColumn("{task.fields[eta]}"), console=__getattr__("err"),
                   transient=False)
    with bar:
        yield _Bar(bar)
