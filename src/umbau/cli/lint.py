"""``umbau lint``: parse, call :func:`umbau.commands.lint.lint`, render, exit 1 on errors.

The text for people is drawn here with rich; the machine formats come from
``umbau.lint.reporters``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from umbau.cli import State, cli, pass_state, render

if TYPE_CHECKING:
    from rich.console import Console

    from umbau.commands.lint import LintResult
    from umbau.lint.model import Finding

DOCS = "docs/rules"
FORMATS = ["text", "json", "github", "sarif", "gitlab"]


@cli.command("lint")
@click.argument("targets", nargs=-1)
@click.option("--since", metavar="REV", help="Lint the revisions after REV.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True,
              help="Output format (github: workflow annotations; sarif: GitHub code scanning; "
                   "gitlab: code quality report).")
@click.option("--enable", multiple=True, metavar="RULE", help="Switch a rule on (repeatable).")
@click.option("--disable", multiple=True, metavar="RULE", help="Switch a rule off (repeatable).")
@click.option("--target-version", type=click.IntRange(9, 99), metavar="N",
              help="PostgreSQL major version to lint for (overrides the server's).")
@click.option("--offline", is_flag=True, help="Do not connect to the configured database.")
@click.option("--downgrade", is_flag=True,
              help="Also lint the downgrade path of the selected revisions.")
@click.option("--server", "server_url", metavar="URL",
              help="Capture revisions that need a connection on a throwaway database on this "
                   "server (default: the configured one, else the embedded PostgreSQL).")
@click.option("--setup", metavar="FILE.sql|MODULE:FUNCTION",
              help="Run on the throwaway database before the first revision.")
@click.option("--list-rules", is_flag=True, help="List the rules and exit.")
@pass_state
def lint_command(state: State, targets: tuple[str, ...], since: str | None, fmt: str,
                 enable: tuple[str, ...], disable: tuple[str, ...], target_version: int | None,
                 offline: bool, downgrade: bool, server_url: str | None, setup: str | None,
                 list_rules: bool) -> None:
    """Find operations that lock, rewrite or break, with a safe rewrite for each.

    TARGETS are revision ids and .sql files; none: the revisions not yet applied
    (all of them without a database). Exits 1 when an error-level finding remains.
    """
    from umbau.commands.lint import lint
    from umbau.lint.registry import all_rules

    if list_rules:
        rows = [[r.id, r.severity, "opt-in" if r.opt_in else "on", r.title]
                for r in all_rules().values()]
        render.table(None, ["rule", "severity", "default", "what"], rows)
        return
    result = lint(state.settings, targets, since, enable=enable, disable=disable,
                  target_version=target_version, offline=offline, downgrade=downgrade,
                  server_url=server_url, setup=setup)
    _emit(result, fmt, str(state.settings.root))
    if result.exit_code:
        raise click.exceptions.Exit(result.exit_code)


def _emit(result: LintResult, fmt: str, root: str) -> None:
    from umbau._version import __version__
    from umbau.lint import reporters
    from umbau.lint.registry import all_rules

    if fmt == "json":
        click.echo(reporters.as_json(result))
    elif fmt == "github":
        click.echo(reporters.github(result, root))
    elif fmt == "sarif":
        click.echo(reporters.sarif(result, all_rules(), __version__, root))
    elif fmt == "gitlab":
        click.echo(reporters.gitlab(result, root))
    else:
        text(result, render.out, root)


def human_size(size: int | None) -> str:
    """``123 B``, ``4.5 MB``: sizes in bytes for people (1 kB = 1024 B)."""
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def _where(finding: Finding, root: str | None) -> str:
    from umbau.lint.reporters import relative

    path = relative(finding.path, root)
    if path is None:
        return finding.unit
    location = f"{path}:{finding.line}" if finding.line else path
    return location if finding.unit in location else f"{location} (revision {finding.unit})"


def text(result: LintResult, console: Console, root: str | None = None) -> None:
    """Each finding with its SQL, lock, effect, table size and the safe rewrite."""
    for finding in result.findings:
        _finding(finding, console, root)
    _tables(result, console)
    from rich.markup import escape

    colour = "red" if result.errors else ("yellow" if result.findings else "green")
    console.print(f"[bold {colour}]{escape(result.summary())}[/] (PostgreSQL "
                  f"{result.target_version}, from the {result.version_from})")


def _finding(finding: Finding, console: Console, root: str | None) -> None:
    from rich.markup import escape

    colour = "red" if finding.severity == "error" else "yellow"
    console.print(f"[bold {colour}]{finding.severity}[/] [bold]{finding.rule}[/]  "
                  f"{escape(_where(finding, root))}")
    console.print(f"  {escape(finding.message)}")
    if finding.sql:
        console.print(f"  [dim]sql:[/]   {escape(_short(finding.sql))}")
    if finding.lock != "none":
        console.print(f"  [dim]lock:[/]  {escape(finding.lock)} — blocks {escape(finding.blocks)}")
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


def _tables(result: LintResult, console: Console) -> None:
    from rich.markup import escape

    if not result.tables:
        return
    console.print("[bold]tables touched[/]")
    for stats in result.tables.values():
        if stats.exists:
            rows = f"~{stats.rows:,} rows" if stats.rows is not None else "rows unknown"
            console.print(f"  {escape(stats.name)}: {rows}, {human_size(stats.bytes)}")
        else:
            console.print(f"  {escape(stats.name)}: not in the database yet")


def _short(sql: str, limit: int = 300) -> str:
    flat = " ".join(sql.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
