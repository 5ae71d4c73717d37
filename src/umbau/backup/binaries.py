"""Finding pg_dump and pg_restore: the newest one at least as new as the server.

Looked for, in order: the folder named by ``[tool.umbau.backup] pg_bin`` (or
``UMBAU_PG_BIN``, which the CLI puts there) and nothing else when it is set;
otherwise ``PATH``, the binaries bundled with the ``pgserver`` package, and
``/usr/lib/postgresql/*/bin``. A client older than the server is refused: pg_dump
cannot dump a newer server, and pg_restore may not read a newer archive.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from umbau.errors import PgToolMissing, PgToolTooOld

_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class PgTool:
    """One client binary and its version."""

    name: str
    path: Path
    major: int
    version: str

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "path": str(self.path), "major": self.major,
                "version": self.version}


@lru_cache(maxsize=64)
def probe(path: Path) -> PgTool | None:
    """Run ``path --version``; None when it is not a working PostgreSQL client."""
    try:
        out = subprocess.run([str(path), "--version"], capture_output=True, text=True,
                             timeout=20, check=False).stdout
    except OSError:
        return None
    match = _VERSION.search(out)
    if not match:
        return None
    version = match.group(1) + (f".{match.group(2)}" if match.group(2) else "")
    return PgTool(path.name, path, int(match.group(1)), version)


def _pgserver_bin() -> Path | None:
    """The binaries bundled with the pgserver package, found without importing it (its
    import starts work and warnings a backup does not need)."""
    try:
        spec = importlib.util.find_spec("pgserver")
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "pginstall" / "bin"


def search_folders(pg_bin: str | Path | None = None,
                   path_env: str | None = None) -> list[Path]:
    """The folders searched, most explicit first."""
    if pg_bin:
        return [Path(pg_bin).expanduser()]
    folders = [Path(p) for p in (path_env or os.defpath).split(os.pathsep) if p]
    bundled = _pgserver_bin()
    if bundled is not None:
        folders.append(bundled)
    folders.extend(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True))
    return folders


def candidates(name: str, folders: Iterable[Path]) -> list[PgTool]:
    """Every working ``name`` in ``folders``, newest major first."""
    found: dict[tuple[Path, str], PgTool] = {}
    for folder in folders:
        path = folder / name
        if path.is_file() and os.access(path, os.X_OK):
            # Run it by the name found: Debian's /usr/bin/pg_dump is a symlink to a
            # wrapper that picks the program from the name it was called by.
            tool = probe(path)
            if tool is not None:
                found.setdefault((path.resolve(), tool.version), tool)
    return sorted(found.values(), key=lambda t: t.major, reverse=True)


def find_tool(name: str, server_major: int | None, *, pg_bin: str | Path | None = None,
              path_env: str | None = None) -> PgTool:
    """The newest ``name`` whose major version is at least ``server_major``."""
    folders = search_folders(pg_bin, path_env)
    tools = candidates(name, folders)
    if not tools:
        where = ", ".join(str(f) for f in folders[:6])
        raise PgToolMissing(
            f"{name} not found (looked in {where}): install the PostgreSQL client tools or "
            "set UMBAU_PG_BIN / [tool.umbau.backup] pg_bin to their folder"
        )
    best = tools[0]
    if server_major is not None and best.major < server_major:
        raise PgToolTooOld(
            f"{name} {best.version} ({best.path}) is older than the server (PostgreSQL "
            f"{server_major}): install the version {server_major} client tools or point "
            "UMBAU_PG_BIN at them",
            best.major, server_major,
        )
    return best
