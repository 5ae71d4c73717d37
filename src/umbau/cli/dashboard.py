"""``umbau dashboard``: the click command; the work is in :mod:`umbau.dashboard`."""

from __future__ import annotations

import json

import click

from umbau.cli import FORMAT, State, cli, pass_state


@cli.command("dashboard")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but loopback needs a token.")
@click.option("--port", type=int, default=8765, show_default=True, help="TCP port.")
@click.option("--token", envvar="UMBAU_DASHBOARD_TOKEN", show_envvar=True,
              help="Require this token from every request (Bearer header or ?token=).")
@FORMAT
@pass_state
def dashboard_cmd(state: State, host: str, port: int, token: str | None, fmt: str) -> int:
    """Serve a read-only web page of status, history, lint, backfills, backups, releases
    and fleets, with its JSON API under /api/ (until Ctrl-C or SIGTERM, which stop it
    normally: exit 0). With --format json, one line {"url": …} when it serves and one
    {"url": …, "stopped_by": …} when it stops, on stdout."""
    from umbau.dashboard import DashboardOptions, serve

    def ready(url: str) -> None:
        if fmt == "json":
            click.echo(json.dumps({"url": url}))
        else:
            click.echo(f"umbau dashboard on {url} (Ctrl-C to stop)", err=True)

    options = DashboardOptions(host=host, port=port, token=token or None)
    run = serve(state.settings, options, on_ready=ready)
    if fmt == "json":
        click.echo(json.dumps(run.as_dict()))
    else:
        click.echo(f"umbau dashboard stopped ({run.stopped_by or 'server exit'})", err=True)
    return 0
