"""``umbau dashboard``: the click command; the work is in :mod:`umbau.dashboard`."""

from __future__ import annotations

import click

from umbau.cli import State, cli, pass_state


@cli.command("dashboard")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but loopback needs a token.")
@click.option("--port", type=int, default=8765, show_default=True, help="TCP port.")
@click.option("--token", envvar="UMBAU_DASHBOARD_TOKEN", show_envvar=True,
              help="Require this token from every request (Bearer header or ?token=).")
@pass_state
def dashboard_cmd(state: State, host: str, port: int, token: str | None) -> int:
    """Serve a read-only web page of status, history, lint, backfills, backups, releases
    and fleets, with its JSON API under /api/ (until Ctrl-C)."""
    from umbau.dashboard import DashboardOptions, serve

    options = DashboardOptions(host=host, port=port, token=token or None)
    serve(state.settings, options, on_ready=lambda url: click.echo(
        f"umbau dashboard on {url} (Ctrl-C to stop)", err=True))
    return 0
