"""Scratch databases: created for a job on a server, and dropped afterwards.

Every part of umbau that needs a throwaway database (lint's capture, ``umbau test``,
``backup verify --restore-test``, baseline matching, the embedded server's demo database)
goes through here, so naming, quoting and forced drops are done one way.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from sqlalchemy import text

from umbau.postgres.connect import connect, normalize_url
from umbau.postgres.quoting import quote_ident


def database_url(server_url: str, name: str) -> str:
    """``server_url`` with its database replaced by ``name`` (password kept)."""
    return normalize_url(server_url).set(database=name).render_as_string(hide_password=False)


def create_database(server_url: str, name: str, *, template: str | None = None) -> None:
    """``CREATE DATABASE name [TEMPLATE template]`` on the server of ``server_url``."""
    clause = f" TEMPLATE {quote_ident(template)}" if template else ""
    with connect(server_url, autocommit=True) as conn:
        conn.execute(text(f"CREATE DATABASE {quote_ident(name)}{clause}"))


def drop_database(server_url: str, name: str) -> None:
    """``DROP DATABASE IF EXISTS name``, forcing out its sessions (PostgreSQL 13+)."""
    with connect(server_url, autocommit=True) as conn:
        info = conn.dialect.server_version_info or (0,)
        force = " WITH (FORCE)" if info >= (13,) else ""
        if not force:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = :name AND pid <> pg_backend_pid()"),
                         {"name": name})
        conn.execute(text(f"DROP DATABASE IF EXISTS {quote_ident(name)}{force}"))


def recreate_database(server_url: str, name: str) -> None:
    """Drop ``name`` (forcing out sessions) and create it empty."""
    drop_database(server_url, name)
    create_database(server_url, name)


@contextmanager
def scratch_database(server_url: str, prefix: str = "umbau_scratch", *,
                     template: str | None = None) -> Iterator[str]:
    """A new database named ``{prefix}_{random}`` for the block: yields its URL.

    Dropped afterwards, also when the block raises (a failed drop is not raised over
    the block's own error).
    """
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    create_database(server_url, name, template=template)
    try:
        yield database_url(server_url, name)
    finally:
        with suppress(Exception):
            drop_database(server_url, name)
