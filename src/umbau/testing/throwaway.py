"""``umbau test`` on a throwaway database: which server, which database, and the run.

The database is created for the run and dropped afterwards: on the embedded PostgreSQL
(started in a temporary folder), or with CREATE DATABASE on the server named by
``server_url``. When the history needs extensions the embedded server lacks, the
configured server (``database_url``: a throwaway database there, never the database
itself) is used if it has them; otherwise the run stops before it starts
(MissingExtensions, exit 22).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from umbau import alembic_bridge as bridge
from umbau.errors import MissingExtensions
from umbau.events import EventHandler
from umbau.postgres.connect import normalize_url
from umbau.postgres.scratch import database_url, scratch_database
from umbau.settings import Settings
from umbau.testing import extensions
from umbau.testing.report import TestReport
from umbau.testing.stairway import TestOptions, run_checks

PREFIX = "umbau_test"


@contextmanager
def throwaway_database(server_url: str | None = None) -> Iterator[str]:
    """The URL of a new, empty database, dropped afterwards (with its embedded server)."""
    with ExitStack() as stack:
        server = server_url or stack.enter_context(_embedded())
        yield stack.enter_context(scratch_database(server, PREFIX))


@contextmanager
def _embedded() -> Iterator[str]:
    from umbau.postgres import embedded

    with embedded.temporary(prefix="umbau-test-") as url:
        yield url


def test_on_throwaway(settings: Settings, *, server_url: str | None = None,
                      options: TestOptions | None = None,
                      on_event: EventHandler | None = None) -> TestReport:
    """Every check of ``umbau test`` on a throwaway database; see :class:`TestReport`.

    ``server_url``: the server to create it on (default: the embedded PostgreSQL, or the
    configured server when the history needs extensions the embedded one lacks).
    Raises MissingExtensions when no server at hand has the extensions the history needs.
    """
    options = options or TestOptions()
    needed = extensions.required(bridge.Project(settings), _sql_files(settings, options))
    with ExitStack() as stack:
        server, label = _server(stack, settings, server_url, needed)
        url = stack.enter_context(scratch_database(server, PREFIX))
        report = run_checks(settings.with_overrides(database_url=url), url, options,
                            on_event=on_event)
    report.database = label
    return report


test_on_throwaway.__test__ = False  # type: ignore[attr-defined]  # pytest: not a test


def _server(stack: ExitStack, settings: Settings, server_url: str | None,
            needed: list[str]) -> tuple[str, str]:
    """The server URL to use and how the report names it."""
    if server_url is not None:
        _require(needed, server_url, f"the server {_shown(server_url)}")
        return server_url, _shown(server_url)
    embedded = stack.enter_context(_embedded())
    lacking = extensions.missing(needed, embedded)
    if not lacking:
        return embedded, "embedded PostgreSQL"
    if settings.database_url:  # its server, never its database
        configured = database_url(settings.database_url, "postgres")
        if not extensions.missing(needed, configured):
            return configured, _shown(configured)
    raise MissingExtensions(
        f"the history needs extension(s) {', '.join(lacking)}, which the embedded PostgreSQL "
        f"does not ship: run `umbau test --server URL` with a server that has them",
        lacking)


def _require(needed: list[str], server_url: str, what: str) -> None:
    lacking = extensions.missing(needed, server_url)
    if lacking:
        raise MissingExtensions(
            f"the history needs extension(s) {', '.join(lacking)}, which {what} lacks: "
            "install them there, or run `umbau test --server URL` with a server that has "
            "them", lacking)


def _shown(url: str) -> str:
    return str(normalize_url(url).render_as_string(hide_password=True))


def _sql_files(settings: Settings, options: TestOptions) -> list[Path]:
    setup = options.setup
    if isinstance(setup, str | Path) and str(setup).endswith(".sql"):
        path = Path(setup)
        return [path if path.is_absolute() else settings.root / path]
    return []
