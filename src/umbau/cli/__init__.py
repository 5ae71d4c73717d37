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
from umbau.cli import _observe, render
from umbau.errors import EXIT_USAGE, Terminated, UmbauError
from umbau.masking import mask_secrets
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


    def override_section(self, name: str, **values: Any) -> None:
        """Flags that live in a sub-table, e.g. ``[tool.umbau.upgrade]``."""
        sections = dict(self.settings.sections)
        sections[name] = {**sections.get(name, {}), **values}
        self._settings = self.settings.with_overrides(sections=sections)


pass_state = click.make_pass_decorator(State)

# Which module defines each command. A module is imported only when one of its commands
# runs (or --help lists them), so `umbau status` does not pay for lint, backup and the
# rest; the modules register their commands on `cli` with the usual decorators.
COMMAND_MODULES = {
    **dict.fromkeys(
        ["init", "new", "config", "status", "check", "history", "show", "heads", "current",
         "upgrade", "downgrade", "stamp", "merge", "doctor", "demo", "baseline"],
        "umbau.cli.core"),
    "lint": "umbau.cli.lint",
    "backfill": "umbau.cli.backfill",
    **dict.fromkeys(["backup", "backups", "restore", "copy"], "umbau.cli.backup"),
    "test": "umbau.cli.test",
    "dashboard": "umbau.cli.dashboard",
    "fleet": "umbau.cli.fleet",
    "release": "umbau.cli.release",
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
@click.option("--debug", is_flag=True,
              help="Show the traceback of an error (the exit code stays the documented one).")
@click.option("--verbose", "-v", is_flag=True, help="Log more, Alembic's INFO lines included.")
@_observe.options
@click.pass_context
def cli(ctx: click.Context, /, config_file: Path | None, debug: bool, verbose: bool,
        **flags: Any) -> None:
    """umbau: safe, zero-downtime migrations for Alembic projects on PostgreSQL.

    The options above work before or after the command (`umbau upgrade --lock-wait 1s`).
    """
    if verbose:
        _log_verbosely()
    _observe.begin(ctx, flags)  # metrics and JSON logs (docs/observability.md)
    ctx.obj = State(flags, config_file, debug)


def _log_verbosely() -> None:
    """INFO lines of umbau, and of Alembic (whose level follows umbau's), on stderr."""
    import logging

    logger = logging.getLogger("umbau")
    logger.setLevel(logging.INFO)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)-5.5s [%(name)s] %(message)s"))
        logger.addHandler(handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code.

    Errors: one line on stderr (``--format json``: ``{"error": {"type", "exit_code",
    "message"}}`` on stdout) and the documented exit code; ``--debug`` adds the traceback.
    """
    args = hoist_global_options(list(sys.argv[1:] if argv is None else argv))
    report = _Reporter(debug="--debug" in args, json_output=_wants_json(args),
                       json_log=_wants_json(args, "--log-format"))
    _observe.expect(args)
    try:
        code = _run(args, report)
    except BaseException:
        _observe.finish(1)
        raise
    return _observe.finish(code)  # exit code into the metrics, push/write at the end


def _run(args: list[str], report: _Reporter) -> int:
    from umbau.interrupts import sigterm_as_interrupt

    try:
        # SIGTERM (timeout, systemd, Kubernetes) unwinds like Ctrl-C: the step in progress
        # is rolled back and the error is reported the documented way (exit 143)
        with sigterm_as_interrupt("the step in progress was rolled back; rerun to continue"):
            result = cli.main(args=args, prog_name="umbau", standalone_mode=False)
    except click.exceptions.Abort as exc:
        # click turns Ctrl-C into Abort even with standalone_mode=False
        if isinstance(exc.__context__, Terminated):
            context = exc.__context__
            return report.fail(context, "Terminated", context.exit_code, str(context))
        if isinstance(exc.__context__, KeyboardInterrupt):  # a command may say what is true
            return report.fail(exc, "Interrupted", 130, str(exc.__context__) or _INTERRUPTED)
        return report.fail(exc, "Aborted", 1, "aborted")
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.exceptions.ClickException as exc:
        return report.click_error(exc)
    except UmbauError as exc:
        return report.fail(exc, type(exc).__name__, exc.exit_code, str(exc))
    except Terminated as exc:
        return report.fail(exc, "Terminated", exc.exit_code, str(exc))
    except KeyboardInterrupt as exc:
        return report.fail(exc, "Interrupted", 130, str(exc) or _INTERRUPTED)
    return int(result or 0)


_INTERRUPTED = "interrupted: the revision in progress was rolled back; rerun to continue"


class _Reporter:
    """Renders an error as one line (or JSON) and returns its exit code."""

    def __init__(self, debug: bool, json_output: bool, json_log: bool = False) -> None:
        self.debug = debug
        self.json_output = json_output
        self.json_log = json_log  # --log-format json: errors as JSON lines on stderr

    def fail(self, exc: BaseException, kind: str, code: int, message: str) -> int:
        if self.debug:
            import traceback

            trace = "".join(traceback.format_exception(exc))
            sys.stderr.write(mask_secrets(trace))
        if self.json_output:
            render.as_json({"error": {"type": kind, "exit_code": code, "message": message}})
        if not _observe.error_line(kind, code, message, wanted=self.json_log) \
                and not self.json_output:
            render.error(message)
        return code

    def click_error(self, exc: click.exceptions.ClickException) -> int:
        code = exc.exit_code if exc.exit_code else EXIT_USAGE
        if self.json_output:
            return self.fail(exc, "UsageError", code, exc.format_message())
        # one line, like every other error (click's own form is four: usage, hint, blank, error)
        message = " ".join(exc.format_message().split())
        ctx = getattr(exc, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        if not _observe.error_line("UsageError", code, f"{message}{hint}",
                                   wanted=self.json_log):
            render.error(f"{message}{hint}")
        return code


def _wants_json(args: Sequence[str], option: str = "--format") -> bool:
    """``--format json`` (or ``--format=json``; or another ``option``) anywhere before
    ``--``."""
    head = args[:args.index("--")] if "--" in args else args
    pairs = zip(head, [*head[1:], ""], strict=True)
    return f"{option}=json" in head or any(a == option and b == "json" for a, b in pairs)


def hoist_global_options(args: list[str]) -> list[str]:
    """Move the group's options given after the command in front of it.

    ``umbau upgrade --lock-wait 1s`` becomes ``umbau --lock-wait 1s upgrade``, except
    for an option that the command (or one of its subcommands) defines itself.
    """
    takes_value = _global_options()
    position = _command_position(args, takes_value)
    if position is None:
        return args
    own = _own_options(args[position])
    front, rest, index = args[:position], [], position + 1
    while index < len(args):
        token = args[index]
        if token == "--":
            rest.extend(args[index:])
            break
        name = token.split("=", 1)[0]
        if name in takes_value and name not in own:
            needs_value = takes_value[name] and "=" not in token
            front.extend(args[index:index + 1 + needs_value])
            index += 1 + needs_value
            continue
        rest.append(token)
        index += 1
    return [*front, args[position], *rest]


def _global_options() -> dict[str, bool]:
    """The group's option names -> whether each takes a value."""
    names: dict[str, bool] = {}
    for param in cli.params:
        if isinstance(param, click.Option) and param.name not in {"version", "help"}:
            for opt in param.opts:
                names[opt] = not param.is_flag
    return names


def _command_position(args: list[str], takes_value: dict[str, bool]) -> int | None:
    index = 0
    while index < len(args):
        token = args[index]
        if not token.startswith("-"):
            return index if token in COMMAND_MODULES else None
        index += 1 + (takes_value.get(token, False) and "=" not in token)
    return None


def _own_options(name: str) -> set[str]:
    """Every option name of a command and its subcommands."""
    command = cli.get_command(click.Context(cli), name)
    found: set[str] = set()
    stack = [command] if command is not None else []
    while stack:
        current = stack.pop()
        for param in current.params:
            found.update(getattr(param, "opts", ()))
        if isinstance(current, click.Group):
            stack.extend(current.commands.values())
    return found
