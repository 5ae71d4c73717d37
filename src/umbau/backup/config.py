"""``[tool.umbau.backup]``: where backups go and how they are taken."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from umbau.errors import SettingsError
from umbau.settings import Settings

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|tb|kib|mib|gib|tib)?\s*$", re.IGNORECASE)
_FACTORS = {None: 1, "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4,
            "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4}
BEFORE_UPGRADE = ("always", "destructive", "never")
KEYS = ("dir", "pg_bin", "search_path", "exact_count_below", "space_factor", "space_margin",
        "before_upgrade", "format", "jobs")


def parse_size(value: Any, *, key: str) -> int:
    """``"100MB"``, ``"1GiB"`` or a number of bytes."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    match = _SIZE.match(str(value))
    if not match or isinstance(value, bool):
        raise SettingsError(f"backup.{key} = {value!r} is not a size: use e.g. '100MB' or '1GiB'")
    return int(float(match.group(1)) * _FACTORS[(match.group(2) or "").lower() or None])


@dataclass(frozen=True)
class BackupConfig:
    """The backup settings of one run."""

    dir: Path
    pg_bin: str | None = None
    search_path: str | None = None
    exact_count_below: int = 100 * 1000**2
    space_factor: float = 1.0
    space_margin: int = 16 * 1024**2
    before_upgrade: str = "destructive"
    format: str = "custom"
    jobs: int = 1


def backup_config(settings: Settings) -> BackupConfig:
    """Read ``settings.section("backup")``; ``dir`` is relative to the settings file's folder."""
    raw = dict(settings.section("backup"))
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise SettingsError(f"unknown key(s) in [tool.umbau.backup]: {', '.join(unknown)} "
                            f"(known: {', '.join(KEYS)})")
    folder = Path(str(raw.get("dir", "backups"))).expanduser()
    if not folder.is_absolute():
        folder = settings.root / folder
    before = str(raw.get("before_upgrade", "destructive")).lower()
    if before not in BEFORE_UPGRADE:
        raise SettingsError(f"backup.before_upgrade = {before!r}: use one of "
                            f"{', '.join(BEFORE_UPGRADE)}")
    fmt = str(raw.get("format", "custom"))
    if fmt not in ("custom", "directory"):
        raise SettingsError(f"backup.format = {fmt!r}: use custom or directory")
    try:
        factor = float(raw.get("space_factor", 1.0))
        jobs = int(raw.get("jobs", 1))
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"[tool.umbau.backup]: {exc}: fix the value") from exc
    return BackupConfig(
        dir=folder.resolve(),
        pg_bin=str(raw["pg_bin"]) if raw.get("pg_bin") else None,
        search_path=str(raw["search_path"]) if raw.get("search_path") else None,
        exact_count_below=parse_size(raw.get("exact_count_below", "100MB"),
                                     key="exact_count_below"),
        space_factor=factor,
        space_margin=parse_size(raw.get("space_margin", "16MiB"), key="space_margin"),
        before_upgrade=before,
        format=fmt,
        jobs=max(1, jobs),
    )
