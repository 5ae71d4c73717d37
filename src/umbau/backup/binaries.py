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


_PROBED: dict[Path, PgTool | None] = {}


def _parse(path: Path, out: str) -> PgTool | None:
    match = _VERSION.search(out)
    if not match:
        return None
    version = match.group(1) + (f".{match.group(2)}" if match.group(2) else "")
    return PgTool(path.name, path, int(match.group(1)), version)


_PENDING: dict[Path, subprocess.Popen[str]] = {}


def start_probes(paths: Iterable[Path]) -> None:
    """Start ``path --version`` of each path not probed yet, without waiting: a caller
    that has other work first (connecting, reading the catalog) overlaps the programs'
    start-up with it; :func:`probe_all` collects them."""
    for path in dict.fromkeys(paths):
        if path in _PROBED or path in _PENDING:
            continue
        try:
            _PENDING[path] = subprocess.Popen([str(path), "--version"], text=True,
                                              stdout=subprocess.PIPE,
                                              stderr=subprocess.DEVNULL)
        except OSError:
            _PROBED[path] = None


def probe_all(paths: Iterable[Path]) -> dict[Path, PgTool | None]:
    """``path --version`` of each path, run side by side (each start of a client costs
    tens of milliseconds, Debian's perl wrapper more: one after the other they were most
    of a small backup's fixed cost); remembered for the process. None for a path that is
    not a working PostgreSQL client."""
    paths = list(paths)
    start_probes(paths)
    for path in paths:
        proc = _PENDING.pop(path, None)
        if proc is None:
            continue
        try:
            out, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        _PROBED[path] = _parse(path, out or "")
    return {p: _PROBED[p] for p in paths}


def executables(name: str, folders: Iterable[Path]) -> list[Path]:
    """``name`` in each of ``folders`` where it is an executable file."""
    return [f / name for f in folders if (f / name).is_file() and os.access(f / name, os.X_OK)]


def probe(path: Path) -> PgTool | None:
    """Run ``path --version``; None when it is not a working PostgreSQL client."""
    return probe_all([path])[path]


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
    # Probed by the name found: Debian's /usr/bin/pg_dump is a symlink to a wrapper that
    # picks the program from the name it was called by.
    paths = executables(name, folders)
    found: dict[tuple[Path, str], PgTool] = {}
    for path, tool in probe_all(paths).items():
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
