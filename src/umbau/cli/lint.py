"""``umbau lint``: parse, call :func:`umbau.commands.lint.lint`, render, exit 1 on errors."""

from __future__ import annotations

import click

from umbau.cli import State, cli, pass_state, render


@cli.command("lint")
@click.argument("targets", nargs=-1)
@click.option("--since", metavar="REV", help="Lint the revisions after REV.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "github"]), default="text",
              show_default=True, help="Output format (github: workflow annotations).")
@click.option("--enable", multiple=True, metavar="RULE", help="Switch a rule on (repeatable).")
@click.option("--disable", multiple=True, metavar="RULE", help="Switch a rule off (repeatable).")
@click.option("--target-version", type=click.IntRange(9, 99), metavar="N",
              help="PostgreSQL major version to lint for (overrides the server's).")
@click.option("--offline", is_flag=True, help="Do not connect to the configured database.")
@click.option("--list-rules", is_flag=True, help="List the rules and exit.")
@pass_state
def lint_command(state: State, targets: tuple[str, ...], since: str | None, fmt: str,
                 enable: tuple[str, ...], disable: tuple[str, ...], target_version: int | None,
                 offline: bool, list_rules: bool) -> None:
    """Find operations that lock, rewrite or break, with a safe rewrite for each.

    TARGETS are revision ids and .sql files; none: the revisions not yet applied
    (all of them without a database). Exits 1 when an error-level finding remains.
    """
    from umbau.commands.lint import lint
    from umbau.lint import reporters
    from umbau.lint.registry import all_rules

    if list_rules:
        rows = [[r.id, r.severity, "opt-in" if r.opt_in else "on", r.title]
                for r in all_rules().values()]
        render.table(None, ["rule", "severity", "default", "what"], rows)
        return
    result = lint(state.settings, targets, since, enable=enable, disable=disable,
                  target_version=target_version, offline=offline)
    root = str(state.settings.root)
    if fmt == "json":
        click.echo(reporters.as_json(result))
    elif fmt == "github":
        click.echo(reporters.github(result, root))
    else:
        reporters.text(result, render.out, root)
    if result.exit_code:
        raise click.exceptions.Exit(result.exit_code)
