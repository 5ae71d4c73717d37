"""The global observability options around one command: ``--metrics-port``,
``--metrics-addr``, ``--pushgateway``, ``--metrics-textfile`` and ``--log-format``.

:func:`begin` (from the group's callback, before the command) starts the exposition and
hooks the metrics and the JSON log into :func:`umbau.cli.render.progress`; :func:`finish`
(from ``main``, after it) records the exit code, pushes or writes, warns about a failed
push or write and clears the hooks. prometheus_client is imported only when a metrics
option is given.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from umbau.cli import render

F = TypeVar("F", bound=Callable[..., Any])

_OPTIONS = [
    click.option("--metrics-port", type=click.IntRange(0, 65535),
                 help="Serve Prometheus metrics on this port while the command runs."),
    click.option("--metrics-addr", default="127.0.0.1", show_default=True,
                 help="Address for --metrics-port (0.0.0.0: every interface)."),
    click.option("--pushgateway", metavar="URL",
                 help="Push the metrics to this Prometheus Pushgateway when the command ends."),
    click.option("--metrics-textfile", type=click.Path(path_type=Path), metavar="PATH",
                 help="Write the metrics to this node_exporter textfile (atomically) at the end."),
    click.option("--log-format", type=click.Choice(["text", "json"]), default="text",
                 show_default=True,
                 help="json: one JSON line per event (and error) on stderr, no progress bar."),
]
NAMES = ("metrics_port", "metrics_addr", "pushgateway", "metrics_textfile", "log_format")


def options(func: F) -> F:
    """The group's observability options (their values are taken by :func:`begin`)."""
    for option in reversed(_OPTIONS):
        func = option(func)
    return func


class _Run:
    """What :func:`begin` set up for the command in progress."""

    def __init__(self) -> None:
        self.command = ""
        self.args: list[str] = []
        self.exporter: Any = None
        self.json_log: Any = None


_current = _Run()


def begin(ctx: click.Context, flags: dict[str, Any]) -> None:
    """Take the observability options out of ``flags`` and set them up; raises
    MetricsExportFailed (exit 41) when a target is unusable, before the command runs."""
    given = {name: flags.pop(name, None) for name in NAMES}
    _current.command = command_name(ctx)
    if given["log_format"] == "json":
        from umbau.observability.logs import JsonLog

        _current.json_log = JsonLog(_current.command)
        render.JSON_LOG = _current.json_log
    if given["metrics_port"] is None and not given["pushgateway"] \
            and given["metrics_textfile"] is None:
        return
    from umbau.observability.exposition import Exporter
    from umbau.observability.metrics import Metrics

    metrics = Metrics()
    exporter = Exporter(metrics, port=given["metrics_port"], addr=given["metrics_addr"],
                        pushgateway=given["pushgateway"], textfile=given["metrics_textfile"])
    exporter.start()
    _current.exporter = exporter
    render.SINKS.append(metrics)


def expect(args: list[str]) -> None:
    """The command line about to run (``main`` calls this first): it names the command."""
    _current.args = list(args)


def command_name(ctx: click.Context) -> str:
    """``upgrade``, or ``backfill run`` for a command of a group."""
    name = ctx.invoked_subcommand or ""
    group = ctx.command
    command = group.get_command(ctx, name) if isinstance(group, click.Group) and name else None
    if isinstance(command, click.Group) and name in _current.args:
        rest = _current.args[_current.args.index(name) + 1:]
        words = [word for word in rest if word in command.commands]
        if words:
            return f"{name} {words[0]}"
    return name


def error_line(kind: str, code: int, message: str, *, wanted: bool = False) -> bool:
    """With ``--log-format json``: the final error as one JSON line; False otherwise.
    ``wanted``: the command line asks for JSON logs, so an error raised before
    :func:`begin` could set them up (the group's own options did not parse) is a JSON
    line too."""
    if _current.json_log is None:
        if not wanted:
            return False
        from umbau.observability.logs import JsonLog

        _current.json_log = JsonLog(_current.command)
    _current.json_log.error(kind, code, message)
    return True


def finish(code: int) -> int:
    """After the command: exit code into the metrics, push/write (a failure there only
    warns: the command's outcome stands), then clear everything. Returns ``code``."""
    run = _reset()
    if run.exporter is not None:
        for warning in run.exporter.finish(run.command, code):
            if run.json_log is not None:
                run.json_log.warning(f"warning: {warning}")
            else:
                click.echo(f"umbau: warning: {warning}", err=True)
    return code


def _reset() -> _Run:
    global _current
    run, _current = _current, _Run()
    render.SINKS.clear()
    render.JSON_LOG = None
    return run


def metrics_port() -> int | None:
    """The port the metrics are served on (``--metrics-port 0`` picks one), for tests."""
    exporter = _current.exporter
    return None if exporter is None or exporter.port is None else int(exporter.port)

