"""Which database keeps a fleet's runs: the rule every worker applies the same way.

1. ``--control-url URL`` / ``control_url = "URL"``: that database.
2. ``--control-url embedded`` / ``control_url = "embedded"``: a database ``umbau_fleet``
   on this machine's embedded PostgreSQL (pgserver, data in ``.umbau/fleet/pg`` beside
   the settings file). Only processes on this machine can join such a run.
3. Otherwise, with a targets source of URLs (a file, a template, an inline list): the
   database ``umbau_fleet`` on the server of the source's **first** target (before
   ``--tags``), created on first use. Every worker with the same targets source finds
   the same database, on any machine. Not the first target's own database: a restore of
   that tenant (``--rollback restore``, a backup) would roll the fleet's state back with
   it; and not ``postgres``: PostgreSQL 15 and later let only its owner create tables
   there (PostgreSQL docs, 5.9.6 "Usage Patterns" of schemas).
4. When the role may not create ``umbau_fleet`` there (no CREATEDB, PostgreSQL docs 22.2
   "Role Attributes"), a run that this process alone starts (no ``--worker``) falls
   back to the embedded server of rule 2, with a ``note`` event; a ``--worker`` run is
   refused instead, because workers on other machines could not find it.
5. Without targets source and control URL (``--run ID --worker``, ``fleet status``):
   the embedded server when an earlier run left its data here, else an error.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import psycopg

from umbau.errors import UsageError
from umbau.events import Event, EventHandler, emit
from umbau.fleet.targets import Target, display_url
from umbau.postgres.connect import normalize_url, translate_connect_error
from umbau.postgres.quoting import quote_ident
from umbau.postgres.scratch import database_url
from umbau.settings import Settings

CONTROL_DATABASE = "umbau_fleet"
EMBEDDED = "embedded"


@dataclass(frozen=True)
class ControlDatabase:
    """The control database chosen: its URL (may hold a password) and why."""

    url: str
    origin: str  # "configured", "first-target", "embedded"
    exists: bool = True

    @property
    def shown(self) -> str:
        return display_url(self.url)


def embedded_folder(settings: Settings) -> Path:
    """Where the embedded control server keeps its data (beside the settings file)."""
    return settings.root / ".umbau" / "fleet" / "pg"


@contextmanager
def control_database(settings: Settings, control_url: str | None,
                     targets: Sequence[Target] | None, *, create: bool, worker: bool = False,
                     on_event: EventHandler | None = None) -> Iterator[ControlDatabase]:
    """The control database by the rule of this module, for the duration of the block
    (an embedded server is started for it and stopped afterwards, unless another process
    of this machine still uses it).

    ``targets``: the targets source's targets before ``--tags`` (None: no source).
    ``create``: create ``umbau_fleet`` when missing (``fleet upgrade``); without it
    (``fleet status``) a missing database is reported with ``exists=False``.
    Raises :class:`~umbau.errors.UsageError` when no rule applies or a ``--worker`` run
    cannot create ``umbau_fleet``, and a :class:`~umbau.errors.DatabaseError` subclass
    when the first target's server cannot be reached.
    """
    if control_url and control_url.strip().lower() != EMBEDDED:
        yield ControlDatabase(control_url, "configured")
        return
    if control_url or (not targets and embedded_folder(settings).exists()):
        with _embedded(settings) as url:
            yield ControlDatabase(url, "embedded")
        return
    if not targets:
        raise UsageError("no control database: pass --control-url URL (or set control_url "
                         "in [tool.umbau.fleet]), or the targets source the run was "
                         "started with")
    url = database_url(targets[0].url, CONTROL_DATABASE)
    found = _ensure(targets[0].url, create=create)
    if found is not None:
        yield ControlDatabase(url, "first-target", exists=found)
        return
    server = display_url(database_url(targets[0].url, ""))
    if worker:
        raise UsageError(f"cannot create the control database {CONTROL_DATABASE} on {server} "
                         "(the role lacks CREATEDB): create it there once (`createdb "
                         f"{CONTROL_DATABASE}`) or pass --control-url URL to every worker")
    emit(on_event, Event("note", message=f"control database: the embedded PostgreSQL in "
                         f"{embedded_folder(settings)} ({server} refused CREATE DATABASE "
                         f"{CONTROL_DATABASE}); only workers on this machine can join"))
    with _embedded(settings) as embedded_url:
        yield ControlDatabase(embedded_url, "embedded")


def _libpq(url: str) -> str:
    return normalize_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _ensure(target_url: str, *, create: bool) -> bool | None:
    """Whether ``umbau_fleet`` exists on the target's server, creating it when asked.

    Connects to the target's own database (the one the role is known to reach). None:
    it is missing and the role may not create it.
    """
    try:
        conn = psycopg.connect(_libpq(target_url), autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise translate_connect_error(exc, normalize_url(target_url)) from exc
    with conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                             (CONTROL_DATABASE,)).fetchone()
        if found or not create:
            return found is not None
        try:
            with suppress(psycopg.errors.DuplicateDatabase,  # another worker was first
                          psycopg.errors.UniqueViolation):  # the same, in the catalog
                conn.execute(f"CREATE DATABASE {quote_ident(CONTROL_DATABASE)}")
        except psycopg.errors.InsufficientPrivilege:
            return None
    return True


@contextmanager
def _embedded(settings: Settings) -> Iterator[str]:
    """The URL of ``umbau_fleet`` on this machine's embedded server (created if missing)."""
    from umbau.postgres import embedded

    server = embedded.start(embedded_folder(settings))
    try:
        with psycopg.connect(_libpq(server.url("postgres")), autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                (CONTROL_DATABASE,)).fetchone():
                with suppress(psycopg.errors.DuplicateDatabase,
                              psycopg.errors.UniqueViolation):  # another process was first
                    conn.execute(f"CREATE DATABASE {quote_ident(CONTROL_DATABASE)}")
        yield server.url(CONTROL_DATABASE)
    finally:
        server.stop()
