"""Rendering results and progress: rich text for people, JSON for machines."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from umbau.events import Event, EventHandler

out = Console(highlight=False)
if not out.is_terminal:
    out = Console(highlight=False, width=200)
err = Console(stderr=True, soft_wrap=True, highlight=False)


def error(message: str) -> None:
    err.print(f"[bold red]umbau: error:[/] {message}", markup=True, highlight=False)


def as_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


def table(title: str | None, columns: list[str], rows: list[list[Any]]) -> None:
    tbl = Table(title=title, show_header=True, header_style="bold", box=None, pad_edge=False)
    for col in columns:
        tbl.add_column(col, overflow="fold")
    for row in rows:
        tbl.add_row(*["" if v is None else str(v) for v in row])
    out.print(tbl)


def _line(event: Event) -> str | None:
    if event.kind == "lock_wait":
        who = event.holder or "another session"
        return f"waiting for the migrator lock, held by {who} ({event.waited or 0:.0f}s so far)"
    if event.kind == "retry":
        return (f"retry {event.revision} in {event.delay:.1f}s (attempt {event.attempt} "
                f"failed: {event.error})")
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
    if not (enabled and err.is_terminal):
        def plain(event: Event) -> None:
            line = _line(event)
            if line:
                err.print(line, markup=False)

        yield plain
        return
    bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/"
                   "{task.total}"), TimeElapsedColumn(), console=err, transient=False)
    task = bar.add_task("migrating", total=None)

    def handle(event: Event) -> None:
        if event.kind == "plan":
            bar.update(task, total=event.total)
        elif event.kind == "step_start":
            label = f"{event.direction} {event.revision} {event.message or ''}"
            bar.update(task, description=label)
        elif event.kind == "step_done":
            bar.advance(task)
            line = _line(event)
            if line:
                bar.console.print(line, markup=False)
        else:
            line = _line(event)
            if line:
                bar.console.print(line, markup=False)

    with bar:
        yield handle
