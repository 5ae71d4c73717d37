"""Rendering results and progress: rich text for people, plain text for pipes, JSON for
machines.

rich is imported only when a terminal is there to enjoy it (or a command asks for
``out``/``err``): ``umbau check`` in a readiness probe should not pay for it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from umbau.events import Event, EventHandler

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
    """One line of plain text."""
    click.echo(text, err=stderr)


def error(message: str) -> None:
    if sys.stderr.isatty():
        from rich.markup import escape

        # escape: messages quote paths and `# umbau: ignore[rule-id]`, which are not markup
        __getattr__("err").print(f"[bold red]umbau: error:[/] {escape(message)}", markup=True,
                                 highlight=False)
    else:
        click.echo(f"umbau: error: {message}", err=True)


def as_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


def table(title: str | None, columns: list[str], rows: list[list[Any]]) -> None:
    cells = [["" if v is None else str(v) for v in row] for row in rows]
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


def _line(event: Event) -> str | None:
    if event.kind == "lock_wait":
        who = event.holder or "another session"
        return f"waiting for the migrator lock, held by {who} ({event.waited or 0:.0f}s so far)"
    if event.kind == "retry":
        return (f"retry {event.revision} in {event.delay:.1f}s (attempt {event.attempt} "
                f"failed: {event.error})")
    if event.kind == "backup_before_upgrade":
        return f"backing up before the upgrade: {event.message}"
    if event.kind == "backup_taken":
        return f"backup taken: {event.message} ({event.duration or 0:.1f}s)"
    if event.kind == "fleet_target":  # umbau fleet upgrade: one target finished
        return event.message
    if event.kind == "step_done":
        return (f"{event.direction:<9} {event.revision}  {event.message or ''}  "
                f"[{(event.duration or 0) * 1000:.0f} ms]")
    return None


@contextmanager
def progress(enabled: bool, quiet: bool = False) -> Iterator[EventHandler]:
    """An event handler: a progress bar on a terminal, plain lines otherwise."""
    if quiet:
        yield lambda event: None
        return
    if not (enabled and sys.stderr.isatty()):
        def plain(event: Event) -> None:
            text = _line(event)
            if text:
                click.echo(text, err=True)

        yield plain
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/"
                   "{task.total}"), TimeElapsedColumn(), console=__getattr__("err"),
                   transient=False)
    task = bar.add_task("migrating", total=None)

    def handle(event: Event) -> None:
        if event.kind == "plan":
            bar.update(task, total=event.total)
        elif event.kind == "step_start":
            label = f"{event.direction} {event.revision} {event.message or ''}"
            bar.update(task, description=label)
        elif event.kind == "fleet_progress":
            bar.update(task, description=event.message or "")
        else:
            if event.kind in ("step_done", "fleet_target"):
                bar.advance(task)
            text = _line(event)
            if text:
                bar.console.print(text, markup=False)

    with bar:
        yield handle
