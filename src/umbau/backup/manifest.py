"""Backup names, the manifest JSON beside each backup, checksums and the catalog of a folder.

A backup is ``<db>_<UTC timestamp>_<revision>.dump`` (custom format) or a folder of
that name without suffix (directory format), and ``<same name>.json`` beside it. The
dump is written under a ``.partial`` name and renamed when complete; the manifest is
written last, so a backup without a manifest is never taken for a complete one.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from umbau.errors import BackupCorrupt, BackupFailed, UsageError

MANIFEST_VERSION = 1
PARTIAL = ".partial"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_CHUNK = 1024 * 1024


def safe(part: str) -> str:
    return _UNSAFE.sub("-", part).strip("-") or "x"


def backup_name(database: str, created: datetime, revisions: tuple[str, ...]) -> str:
    stamp = created.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    revision = "+".join(revisions) if revisions else "base"
    return f"{safe(database)}_{stamp}_{safe(revision)}"


def secure_dir(path: Path) -> Path:
    """Create ``path`` (and parents) with mode 0700; tighten it if it exists."""
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(path, 0o700)
    except OSError as exc:
        raise BackupFailed(f"cannot use the backup folder {path}: {exc.strerror}: set "
                           "[tool.umbau.backup] dir or pass --dir") from exc
    return path


def sha256_of(path: Path) -> str:
    """Of a file; of a folder: over each file's relative name and content, sorted."""
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        if path.is_dir():
            digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        with file.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def size_of(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def manifest_path(dump: Path) -> Path:
    base = dump.name[:-5] if dump.name.endswith(".dump") else dump.name
    return dump.with_name(base + ".json")


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write atomically (temporary file, fsync, rename), mode 0600."""
    tmp = path.with_name(path.name + PARTIAL)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, default=str)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def read_manifest(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BackupCorrupt(f"manifest {path} cannot be read ({exc}): the backup is "
                            "incomplete; take a new one") from exc
    if not isinstance(data, dict):
        raise BackupCorrupt(f"manifest {path} is not a JSON object: take a new backup")
    return data


@dataclass
class BackupEntry:
    """One complete backup in a folder: its dump and manifest."""

    path: Path
    manifest_file: Path
    manifest: dict[str, Any]

    @property
    def created(self) -> datetime:
        return datetime.fromisoformat(self.manifest["created"])

    @property
    def verified(self) -> bool:
        return bool((self.manifest.get("verification") or {}).get("ok"))

    @property
    def restore_tested(self) -> bool:
        verification = self.manifest.get("verification") or {}
        return bool(verification.get("ok") and verification.get("restore_test"))

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "created": self.manifest.get("created"),
            "database": self.manifest.get("database"),
            "revision": self.manifest.get("revision"),
            "format": self.manifest.get("format"),
            "size": self.manifest.get("size"),
            "verified": self.verified,
            "restore_tested": self.restore_tested,
            "verified_at": (self.manifest.get("verification") or {}).get("at"),
        }


def entry_for(dump: Path) -> BackupEntry:
    """The entry of ``dump`` (a .dump file or a directory-format folder)."""
    if not dump.exists():
        raise UsageError(f"{dump} does not exist: pass a backup file or folder "
                         "(see `umbau backups list`)")
    mpath = manifest_path(dump)
    manifest = read_manifest(mpath) if mpath.is_file() else {}
    return BackupEntry(dump, mpath, manifest)


def scan(folder: Path) -> tuple[list[BackupEntry], list[Path]]:
    """(complete backups oldest first, incomplete items): ``….partial`` leftovers of
    interrupted backups, manifests without their dump or that cannot be read, and dumps
    without a manifest."""
    if not folder.is_dir():
        return [], []
    entries: list[BackupEntry] = []
    partial: list[Path] = []
    claimed: set[Path] = set()
    items = sorted(folder.iterdir())
    for item in items:
        if item.name.endswith(PARTIAL):
            partial.append(item)
            continue
        if item.suffix != ".json":
            continue
        dump = _dump_for(item)
        if dump is None:
            partial.append(item)
            continue
        claimed.add(dump)
        try:
            entry = BackupEntry(dump, item, read_manifest(item))
            entry.created  # noqa: B018 - a manifest without a valid date is not complete
        except (BackupCorrupt, KeyError, ValueError, TypeError):
            partial.append(item)
            continue
        entries.append(entry)
    partial += [item for item in items if item not in claimed and _looks_like_dump(item)]
    entries.sort(key=lambda e: e.created)
    return entries, sorted(partial)


def _looks_like_dump(item: Path) -> bool:
    return (item.suffix == ".dump" and item.is_file()) or (item.is_dir()
                                                            and (item / "toc.dat").is_file())


def _dump_for(manifest_file: Path) -> Path | None:
    stem = manifest_file.name[:-5]
    for candidate in (manifest_file.with_name(stem + ".dump"), manifest_file.with_name(stem)):
        if candidate.exists():
            return candidate
    return None



def hold(path: Path) -> int:
    """Lock ``path`` (a ``.partial`` file or folder) for the process that writes it:
    an exclusive ``flock`` on an open descriptor, which the kernel releases when the
    process ends in any way, ``kill -9`` included. Returns the descriptor to close."""
    fd = os.open(path, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def abandoned(path: Path) -> bool:
    """True when nobody holds the lock of :func:`hold` on ``path``: the backup that
    wrote it was killed (a running one keeps its lock until it renames the file)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    finally:
        os.close(fd)
    return True


def abandoned_partials(folder: Path) -> list[Path]:
    """The dump ``.partial`` leftovers in ``folder`` whose backup process is gone."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name.endswith(PARTIAL)
                  and not p.name.endswith(".json" + PARTIAL) and abandoned(p))
