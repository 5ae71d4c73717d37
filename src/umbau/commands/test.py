"""``umbau test``: prove on a throwaway database that every revision upgrades, downgrades
and keeps the data.

The database is created for the run and dropped afterwards: on the embedded
PostgreSQL (started in a temporary folder), or with CREATE DATABASE on the server
named by ``server_url``. The project's own database_url is never touched.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from sqlalchemy import text

from umbau.events import EventHandler
from umbau.postgres.connect import connect, normalize_url
from umbau.settings import Settings
from umbau.testing.report import TestReport
from umbau.testing.runner import LintHook, TestOptions, run_checks


def test(settings: Settings, *, server_url: str | None = None,
         options: TestOptions | None = None, with_lint: bool = True,
         on_event: EventHandler | None = None) -> TestReport:
    """Run every check of ``umbau test`` on a throwaway database; see :class:`TestReport`.

    ``with_lint``: attach each revision's ``umbau lint`` findings (offline) to its timing.
    """
    options = options or TestOptions()
    if with_lint and options.lint is None:
        options = replace(options, lint=lint_hook(settings))
    with throwaway_database(server_url) as url:
        report = run_checks(settings.with_overrides(database_url=url), url, options,
                            on_event=on_event)
        report.database = "embedded PostgreSQL" if server_url is None else \
            normalize_url(url).render_as_string(hide_password=True)
    return report


def lint_hook(settings: Settings) -> LintHook:
    """Each revision's findings of ``umbau lint`` (offline, all revisions linted once)."""
    from umbau.commands.lint import lint

    by_revision: dict[str, list[dict[str, Any]]] = {}
    for finding in lint(settings.with_overrides(database_url=None), offline=True).findings:
        by_revision.setdefault(finding.unit, []).append(finding.as_dict())
    return lambda revision: by_revision.get(revision, [])


test.__test__ = False  # type: ignore[attr-defined]  # pytest: a library function, not a test


@contextmanager
def throwaway_database(server_url: str | None = None) -> Iterator[str]:
    """The URL of a new, empty database, dropped afterwards (with its embedded server)."""
    if server_url is not None:
        with _created_database(server_url) as url:
            yield url
        return
    from umbau.postgres import embedded

    with embedded.temporary(prefix="umbau-test-") as server, _created_database(server) as url:
        yield url


@contextmanager
def _created_database(server_url: str) -> Iterator[str]:
    name = f"umbau_test_{uuid.uuid4().hex[:12]}"
    with connect(server_url, autocommit=True) as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield normalize_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with connect(server_url, autocommit=True) as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
