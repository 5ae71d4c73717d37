"""Reporters: rich text for people, JSON for tools, GitHub workflow annotations for CI."""

from __future__ import annotations

import contextlib
import json
import os
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape

from umbau.lint.model import ERROR, Finding

if TYPE_CHECKING:
    from umbau.commands.lint import LintResult

DOCS = "docs/rules"


def human_size(size: int | None) -> str:
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def _where(finding: Finding, root: str | None) -> str:
    path = finding.path
    if path and root:
        with contextlib.suppress(ValueError):  # another drive on Windows
            path = os.path.relpath(path, root)
    if path is None:
        return finding.unit
    location = f"{path}:{finding.line}" if finding.line else path
    return location if finding.unit in location else f"{location} (revision {finding.unit})"


def text(result: LintResult, console: Console, root: str | None = None) -> None:
    """Each finding with its SQL, lock, effect, table size and the safe rewrite."""
    for finding in result.findings:
        colour = "red" if finding.severity == ERROR else "yellow"
        console.print(f"[bold {colour}]{finding.severity}[/] [bold]{finding.rule}[/]  "
                      f"{escape(_where(finding, root))}")
        console.print(f"  {escape(finding.message)}")
        if finding.sql:
            console.print(f"  [dim]sql:[/]   {escape(_short(finding.sql))}")
        if finding.lock != "none":
            console.print(f"  [dim]lock:[/]  {escape(finding.lock)} — blocks "
                          f"{escape(finding.blocks)}")
            console.print(f"  [dim]cost:[/]  {escape(finding.effect)}")
        if finding.table and (finding.table_rows is not None or finding.table_bytes is not None):
            rows = f"~{finding.table_rows:,} rows" if finding.table_rows is not None else "? rows"
            console.print(f"  [dim]table:[/] {escape(finding.table)}: {rows}, "
                          f"{human_size(finding.table_bytes)}")
        for note in finding.notes:
            console.print(f"  [dim]note:[/]  {escape(note)}")
        console.print("  [dim]safe rewrite:[/]")
        for line in finding.safe.splitlines():
            console.print(f"    [cyan]{escape(line)}[/]" if line.strip() else "")
        console.print(f"  [dim]see {DOCS}/{finding.rule}.md; silence with "
                      f"{escape(f'# umbau: ignore[{finding.rule}] <reason>')}[/]")
        console.print()
    if result.tables:
        console.print("[bold]tables touched[/]")
        for stats in result.tables.values():
            if stats.exists:
                rows = f"~{stats.rows:,} rows" if stats.rows is not None else "rows unknown"
                console.print(f"  {escape(stats.name)}: {rows}, {human_size(stats.bytes)}")
            else:
                console.print(f"  {escape(stats.name)}: not in the database yet")
    colour = "red" if result.errors else ("yellow" if result.findings else "green")
    console.print(f"[bold {colour}]{escape(result.summary())}[/] (PostgreSQL "
                  f"{result.target_version}, from the {result.version_from})")


def _short(sql: str, limit: int = 300) -> str:
    flat = " ".join(sql.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def as_json(result: LintResult) -> str:
    return json.dumps(result.as_dict(), indent=2, default=str)


def _escape_data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(value: str) -> str:
    return _escape_data(value).replace(":", "%3A").replace(",", "%2C")


def github(result: LintResult, root: str | None = None) -> str:
    """One ``::error``/``::warning`` workflow command per finding."""
    lines = []
    for finding in result.findings:
        level = "error" if finding.severity == ERROR else "warning"
        props: dict[str, Any] = {"title": f"umbau lint: {finding.rule}"}
        if finding.path:
            props["file"] = os.path.relpath(finding.path, root) if root else finding.path
            if finding.line:
                props["line"] = finding.line
        joined = ",".join(f"{k}={_escape_property(str(v))}" for k, v in props.items())
        body = (f"{finding.message}\nlock: {finding.lock} (blocks {finding.blocks}); "
                f"{finding.effect}\nsafe rewrite:\n{finding.safe}")
        lines.append(f"::{level} {joined}::{_escape_data(body)}")
    lines.append(result.summary())
    return "\n".join(lines)
