"""The setup hook of ``umbau test``: what runs on the empty throwaway database before the
first revision (histories that start from a squashed schema)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Connection

from umbau.errors import SettingsError, UmbauError
from umbau.loader import load_object
from umbau.postgres.errors import describe_error
from umbau.settings import Settings

Setup = str | Path | Callable[[Connection], Any]


def run_setup(settings: Settings, conn: Connection, setup: Setup) -> None:
    """Run ``setup`` (an .sql file, ``module:function`` or a callable taking the
    connection) and commit; SettingsError with the reason when it fails."""
    try:
        _run_setup(settings, conn, setup)
    except UmbauError:
        raise
    except Exception as exc:
        if conn.in_transaction():
            conn.rollback()
        raise SettingsError(f"the setup hook {setup!r} failed: {describe_error(exc)}; fix it "
                            "(it runs on the empty throwaway database)") from exc


def _run_setup(settings: Settings, conn: Connection, setup: Setup) -> None:
    if callable(setup):
        setup(conn)
    elif str(setup).endswith(".sql"):
        conn.exec_driver_sql(_read(settings, Path(setup)))
    else:
        _load(settings, str(setup))(conn)
    conn.commit()


def _read(settings: Settings, path: Path) -> str:
    path = path if path.is_absolute() else settings.root / path
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"setup file {path} cannot be read ({exc}): fix --setup") from exc


def _load(settings: Settings, setup: str) -> Callable[[Connection], Any]:
    if not setup.partition(":")[2]:
        raise SettingsError(f"setup {setup!r}: use a .sql file or module:function")
    try:
        func: Callable[[Connection], Any] = load_object(setup, settings.root)
    except Exception as exc:  # ImportError, AttributeError, or the module's own
        raise SettingsError(f"setup {setup!r} cannot be loaded ({exc}): fix --setup") from exc
    return func
