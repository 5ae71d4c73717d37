"""umbau's pytest plugin (registered through the ``pytest11`` entry point).

Fixtures, all lazy: nothing starts unless a test asks for one.

- ``umbau_settings``: the project's settings (``umbau_project`` ini option, default the
  rootdir), found like the CLI finds them, without reading the environment.
- ``umbau_server_url``: a server to create throwaway databases on: ``--umbau-server``,
  the ``umbau_server_url`` ini option, ``UMBAU_TEST_DATABASE_URL``, or the embedded
  PostgreSQL, started once per session.
- ``umbau_database_url``: a new, empty database per test, dropped afterwards.
- ``umbau_runner``: a :class:`~umbau.testing.harness.MigrationRunner` on that database.
- ``umbau_report``: one run of every ``umbau test`` check, shared by the session.

``umbau_checks = True`` (or a list of check names) in a ``conftest.py`` collects the
checks of :mod:`umbau.testing.checks` as tests in that folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHECK_NAMES = ("single_head", "upgrade", "stairway", "with_rows", "data", "drift", "idempotent")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("umbau", "umbau migration tests")
    group.addoption("--umbau-server", dest="umbau_server", metavar="URL",
                    help="server for umbau's throwaway databases (default: embedded)")
    parser.addini("umbau_project", "folder of the project's umbau settings (default: rootdir)")
    parser.addini("umbau_server_url", "server for umbau's throwaway databases")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """Collect umbau's checks where a conftest.py says ``umbau_checks = ...``."""
    if file_path.name != "conftest.py":
        return None
    module = parent.config.pluginmanager.get_plugin(str(file_path))
    wanted = getattr(module, "umbau_checks", None)
    if not wanted:
        return None
    collector = UmbauChecks.from_parent(parent, path=file_path)
    collector.wanted = _wanted(wanted)
    return collector


def _wanted(value: Any) -> set[str]:
    if value is True or value == "all":
        return set(CHECK_NAMES)
    names = {str(v).replace("-", "_") for v in ([value] if isinstance(value, str) else value)}
    unknown = names - set(CHECK_NAMES)
    if unknown:
        raise pytest.UsageError(f"umbau_checks names unknown checks {sorted(unknown)}: "
                                f"use some of {', '.join(CHECK_NAMES)}")
    return names


class UmbauChecks(pytest.Module):
    """The functions of :mod:`umbau.testing.checks`, collected under a conftest.py."""

    wanted: set[str]

    def _getobj(self) -> Any:
        from umbau.testing import checks

        return checks

    def collect(self) -> Any:
        for item in super().collect():
            if item.name.removeprefix("test_umbau_") in self.wanted:
                yield item


@pytest.fixture(scope="session")
def umbau_settings(pytestconfig: pytest.Config) -> Any:
    """The project's settings, without a database URL of their own."""
    from umbau.settings import load_settings

    folder = pytestconfig.getini("umbau_project") or ""
    root = (pytestconfig.rootpath / folder).resolve()
    return load_settings(cwd=root, environ={}).with_overrides(database_url=None)


@pytest.fixture(scope="session")
def umbau_server_url(pytestconfig: pytest.Config,
                     tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server URL for throwaway databases; the embedded PostgreSQL unless one is named."""
    named = (pytestconfig.getoption("umbau_server", None)
             or pytestconfig.getini("umbau_server_url")
             or os.environ.get("UMBAU_TEST_DATABASE_URL"))
    if named:
        yield named
        return
    from umbau.postgres import embedded

    server = embedded.start(tmp_path_factory.mktemp("umbau-pg") / "data")
    try:
        yield server.url("postgres")
    finally:
        server.stop()


@pytest.fixture
def umbau_database_url(umbau_server_url: str) -> Iterator[str]:
    """A new, empty database for one test, dropped afterwards."""
    from umbau.testing.throwaway import throwaway_database

    with throwaway_database(umbau_server_url) as url:
        yield url


@pytest.fixture
def umbau_runner(umbau_settings: Any, umbau_database_url: str) -> Any:
    """Upgrade, downgrade, snapshot and fill rows on the throwaway database."""
    from umbau.testing.harness import MigrationRunner

    return MigrationRunner(umbau_settings.with_overrides(database_url=umbau_database_url))


@pytest.fixture(scope="session")
def umbau_report(umbau_settings: Any, umbau_server_url: str) -> Any:
    """Every check of ``umbau test``, run once on a throwaway database."""
    from umbau.testing.throwaway import test_on_throwaway

    return test_on_throwaway(umbau_settings, server_url=umbau_server_url)
