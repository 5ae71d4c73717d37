"""The command line: parse, load settings, call the library, render, map errors to exit codes.

``main(argv)`` runs in-process and returns the exit code, so tests call it directly.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from umbau._version import __version__
from umbau.cli import render
from umbau.errors import EXIT_USAGE, UmbauError
from umbau.settings import Settings, load_settings

FORMAT = click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
                      show_default=True, help="Output format.")


class State:
    """What the group's options leave for the commands."""

    def __init__(self, flags: dict[str, Any], config_file: Path | None, debug: bool) -> None:
        self.flags = flags
        self.config_file = config_file
        self.debug = debug
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(environ=os.environ, flags=self.flags,
                                           config_file=self.config_file)
        return self._settings


pass_state = click.make_pass_decorator(State)

# Which module defines each command. A module is imported only when one of its commands
# runs (or --help lists them), so `umbau status` does not pay for lint, backup and the
# rest; the modules register their commands on `cli` with the usual decorators.
COMMAND_MODULES = {
    **dict.fromkeys(
        ["init", "new", "config", "status", "check", "history", "show", "heads", "current",
         "upgrade", "downgrade", "stamp", "merge", "doctor", "demo"], "umbau.cli.core"),
    "lint": "umbau.cli.lint",
    "backfill": "umbau.cli.backfill",
    **dict.fromkeys(["backup", "backups", "restore", "copy"], "umbau.cli.backup"),
    "test": "umbau.cli.test",
    "fleet": "umbau.cli.fleet",
}


class LazyGroup(click.Group):
    """A group that imports a command's module the first time the command is needed."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMAND_MODULES)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMAND_MODULES:
            importlib.import_module(COMMAND_MODULES[cmd_name])
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="umbau")
@click.option("--config", "config_file", type=click.Path(path_type=Path),
              help="Settings file (umbau.toml or pyproject.toml); default: found by walking up.")
@click.option("--database-url", help="Database URL (overrides UMBAU_DATABASE_URL/DATABASE_URL).")
@click.option("--alembic-config", help="Path of alembic.ini.")
@click.option("--script-location", help="Alembic script folder (instead of alembic.ini).")
@click.option("--metadata", help="The models' MetaData as module:attribute.")
@click.option("--lock-timeout", help="lock_timeout per revision, e.g. 2s.")
@click.option("--statement-timeout", help="statement_timeout per revision, e.g. 5min, or off.")
@click.option("--retries", type=int, help="Retries of a revision after lock timeout/deadlock.")
@click.option("--lock-wait", help="How long to wait for another migrator, e.g. 15min.")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.pass_context
def cli(ctx: click.Context, /, config_file: Path | None, debug: bool, **flags: Any) -> None:
    """umbau: safe, zero-downtime migrations for Alembic projects on PostgreSQL."""
    ctx.obj = State(flags, config_file, debug)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        result = cli.main(args=args, prog_name="umbau", standalone_mode=False)
    except click.exceptions.Abort as exc:
        # click turns Ctrl-C into Abort even with standalone_mode=False
        if isinstance(exc.__context__, KeyboardInterrupt):
            render.error("interrupted: the step in progress was rolled back; rerun to continue")
            return 130
        render.error("aborted")
        return 1
    except click.exceptions.ClickException as exc:
        exc.show()
        return exc.exit_code if exc.exit_code else EXIT_USAGE
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except UmbauError as exc:
        if debug:
            raise
        render.error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        render.error("interrupted: the revision in progress was rolled back; rerun to continue")
        return 130
    return int(result or 0)


