"""The embedded PostgreSQL of the ``pgserver`` package (extra ``embedded``)."""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from umbau.errors import UmbauError


@dataclass
class EmbeddedServer:
    """A running pgserver cluster in ``folder``; ``url(db)`` names a database on it."""

    folder: Path
    handle: Any

    def url(self, database: str = "postgres") -> str:
        socket_dir = self.handle.get_postmaster_info().socket_dir
        return f"postgresql+psycopg://postgres@/{database}?host={quote(str(socket_dir))}"

    def stop(self) -> None:
        self.handle.cleanup()


def start(folder: Path, *, keep_running: bool = False) -> EmbeddedServer:
    """Start (or attach to) the embedded server whose data lives in ``folder``."""
    try:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI): harmless
            warnings.simplefilter("ignore")
            import pgserver
    except ImportError as exc:
        raise UmbauError(
            "the embedded PostgreSQL needs the pgserver package: pip install 'umbau[embedded]'"
        ) from exc
    folder = folder.resolve()
    folder.parent.mkdir(parents=True, exist_ok=True)
    cleanup = None if keep_running else "stop"
    handle = pgserver.get_server(folder, cleanup_mode=cleanup)  # type: ignore[attr-defined]
    return EmbeddedServer(folder=folder, handle=handle)


@contextmanager
def temporary(prefix: str = "umbau-") -> Iterator[str]:
    """An embedded server in a temporary folder for the block: its maintenance URL.

    Stopped and its folder removed afterwards, also on errors.
    """
    with tempfile.TemporaryDirectory(prefix=prefix) as folder:
        server = start(Path(folder) / "data")
        try:
            yield server.url("postgres")
        finally:
            server.stop()
