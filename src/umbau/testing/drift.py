"""Drift: the models (a SQLAlchemy MetaData) against a migrated database, compared as
umbau's own catalog snapshots.

The models are created with ``metadata.create_all`` on a scratch database of the same
server, and both databases are read with :func:`umbau.postgres.snapshot.take`; so every
difference is named the way PostgreSQL itself stores it (server defaults, nullability,
indexes including expression and partial ones, named constraints, enums and their
values, sequences), and Alembic's comparison and its false positives are not involved.
``umbau doctor`` and ``umbau test`` both call :func:`differences`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import MetaData
from sqlalchemy.engine import Connection

from umbau.errors import SettingsError
from umbau.loader import load_object
from umbau.postgres import snapshot as snap
from umbau.postgres.connect import connect
from umbau.postgres.quoting import quote_ident
from umbau.postgres.scratch import database_url, scratch_database
from umbau.settings import Settings

# What models can say; functions, triggers, views and policies live in revisions only.
_COMPARED = ("schema ", "table ", "column ", "constraint ", "index ", "sequence ", "enum ")


def load_metadata(settings: Settings) -> Any:
    """Import the models' MetaData named by the ``metadata`` setting (``module:attribute``);
    SettingsError when it cannot be loaded."""
    spec = settings.metadata or ""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise SettingsError(
            f"metadata = {spec!r}: use module:attribute, e.g. app.models:Base.metadata")
    try:
        obj: Any = load_object(spec, settings.root)
    except (ImportError, AttributeError) as exc:
        raise SettingsError(
            f"metadata = {spec!r} cannot be loaded ({exc}): fix the setting") from exc
    return obj


def differences(settings: Settings, conn: Connection, server_url: str,
                excluded: Iterable[str]) -> list[str]:
    """Differences from the models (expected) to the database of ``conn`` (found), one
    line each: ``column orders.state: default 'new'::text -> none``.

    ``server_url``: any URL of the server the scratch database is created on (dropped
    afterwards). ``excluded``: display names of tables not compared (version table,
    umbau's own). Raises SettingsError when the models cannot be loaded or created.
    """
    excluded = set(excluded)
    found = snap.take(conn, excluded)
    expected = models_snapshot(load_metadata(settings), server_url, found, excluded)
    return snap.diff_objects(_compared(expected.objects), _compared(found.objects))


def models_snapshot(metadata: MetaData, server_url: str, database: snap.Snapshot,
                    excluded: set[str]) -> snap.Snapshot:
    """The snapshot of ``metadata.create_all`` on a scratch database, with the schemas
    and extensions of ``database`` created first (models use their types)."""
    with scratch_database(database_url(server_url, "postgres"), "umbau_drift") as url, \
            connect(url) as conn:
        for key in database.objects:
            kind, _, name = key.partition(" ")
            if kind == "schema":
                conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(name)}")
            elif kind == "extension":
                conn.exec_driver_sql(f"CREATE EXTENSION IF NOT EXISTS {quote_ident(name)}")
        try:
            metadata.create_all(conn)
        except Exception as exc:
            raise SettingsError(f"the models cannot be created on an empty database "
                                f"({str(exc).splitlines()[0]}): fix the models") from exc
        conn.commit()
        return snap.take(conn, excluded)


def _compared(objects: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in objects.items() if k.startswith(_COMPARED)}
