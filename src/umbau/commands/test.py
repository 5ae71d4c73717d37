"""``umbau test``: prove on a throwaway database that every revision upgrades, downgrades
and keeps the data. The work is in :mod:`umbau.testing`; this command adds each
revision's lint findings."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from umbau.events import EventHandler
from umbau.settings import Settings
from umbau.testing.report import TestReport
from umbau.testing.stairway import LintHook, TestOptions
from umbau.testing.throwaway import test_on_throwaway, throwaway_database


def test(settings: Settings, *, server_url: str | None = None,
         options: TestOptions | None = None, with_lint: bool = True,
         on_event: EventHandler | None = None) -> TestReport:
    """Run every check of ``umbau test`` on a throwaway database; see :class:`TestReport`.

    ``with_lint``: attach each revision's ``umbau lint`` findings (offline) to its timing.
    Raises MissingExtensions (exit 22) when no server at hand has the history's extensions.
    """
    options = options or TestOptions()
    if with_lint and options.lint is None:
        options = replace(options, lint=lint_hook(settings))
    return test_on_throwaway(settings, server_url=server_url, options=options,
                             on_event=on_event)


def lint_hook(settings: Settings) -> LintHook:
    """Each revision's findings of ``umbau lint`` (offline, all revisions linted once)."""
    from umbau.commands.lint import lint

    by_revision: dict[str, list[dict[str, Any]]] = {}
    for finding in lint(settings.with_overrides(database_url=None), offline=True).findings:
        by_revision.setdefault(finding.unit, []).append(finding.as_dict())
    return lambda revision: by_revision.get(revision, [])


test.__test__ = False  # type: ignore[attr-defined]  # pytest: a library function, not a test

__all__ = ["lint_hook", "test", "throwaway_database"]
