"""``umbau dashboard``: one read-only web page for status, history, lint, backfills,
backups, releases and fleets, over a JSON API that returns the commands' own results.

Needs the ``dashboard`` extra (Starlette and uvicorn): ``pip install 'umbau[dashboard]'``.
"""

from __future__ import annotations

from umbau.dashboard.serve import DashboardOptions, DashboardRun, check_bind, serve

__all__ = ["DashboardOptions", "DashboardRun", "check_bind", "serve"]
