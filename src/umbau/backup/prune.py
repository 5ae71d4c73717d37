"""``umbau backups list`` and ``umbau backups prune``: the catalog of a backup folder and
its retention. Prune never deletes the newest verified backup, nor the newest backup."""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from umbau.backup import manifest as mf
from umbau.backup.config import backup_config
from umbau.errors import UsageError
from umbau.settings import Settings

STALE_PARTIAL = timedelta(days=1)
MAX_KEEP_DAYS = 36500  # a century: far beyond any retention, far within datetime's range


@dataclass
class ListResult:
    folder: Path
    backups: list[mf.BackupEntry] = field(default_factory=list)
    incomplete: list[Path] = field(default_factory=list)
    abandoned: list[Path] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"folder": str(self.folder), "backups": [b.as_dict() for b in self.backups],
                "incomplete": [str(p) for p in self.incomplete],
                "abandoned": [str(p) for p in self.abandoned]}


def list_backups(settings: Settings, directory: Path | None = None) -> ListResult:
    """Complete backups, newest first, and leftovers of interrupted ones; ``abandoned``:
    the ``.partial`` files among them whose backup process is gone (killed), as opposed
    to backups being written right now."""
    folder = (directory or backup_config(settings).dir).resolve()
    entries, partial = mf.scan(folder)
    return ListResult(folder, list(reversed(entries)), partial,
                      mf.abandoned_partials(folder))


@dataclass
class PruneDecision:
    path: Path
    created: str
    keep: bool
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "created": self.created, "keep": self.keep,
                "reason": self.reason}


@dataclass
class PruneResult:
    folder: Path
    dry_run: bool
    decisions: list[PruneDecision] = field(default_factory=list)
    removed_incomplete: list[Path] = field(default_factory=list)

    @property
    def deleted(self) -> list[PruneDecision]:
        return [d for d in self.decisions if not d.keep]

    def as_dict(self) -> dict[str, Any]:
        return {"folder": str(self.folder), "dry_run": self.dry_run,
                "decisions": [d.as_dict() for d in self.decisions],
                "deleted": [str(d.path) for d in self.deleted],
                "removed_incomplete": [str(p) for p in self.removed_incomplete]}


def decide(entries: list[mf.BackupEntry], *, keep_days: float, keep_last: int,
           now: datetime) -> list[PruneDecision]:
    """Keep or delete each backup (``entries`` oldest first); the first reason wins."""
    newest_first = list(reversed(entries))
    newest_verified = next((e for e in newest_first if e.verified), None)
    cutoff = now - timedelta(days=keep_days)
    decisions = []
    for index, entry in enumerate(newest_first):
        if index == 0:
            keep, reason = True, "newest backup"
        elif entry is newest_verified:
            keep, reason = True, "newest verified backup"
        elif index < keep_last:
            keep, reason = True, f"one of the newest {keep_last}"
        elif entry.created >= cutoff:
            keep, reason = True, f"younger than {keep_days:g} days"
        else:
            keep, reason = False, f"older than {keep_days:g} days"
        decisions.append(PruneDecision(entry.path, entry.created.isoformat(), keep, reason))
    return decisions


def prune(settings: Settings, *, keep_days: float = 30, keep_last: int = 0,
          dry_run: bool = False, directory: Path | None = None,
          now: datetime | None = None) -> PruneResult:
    """Delete backups older than ``keep_days`` beyond the newest ``keep_last``."""
    # nan compares false with everything and inf/1e6 days overflow timedelta: a number
    # of days must be finite and within what a date can go back (datetime.MINYEAR).
    if not math.isfinite(keep_days) or not 0 <= keep_days <= MAX_KEEP_DAYS:
        raise UsageError(f"--keep-days {keep_days:g}: use a number of days from 0 to "
                         f"{MAX_KEEP_DAYS:,} (e.g. 30)")
    if keep_last < 0:
        raise UsageError("--keep-last must be 0 or more")
    now = now or datetime.now(UTC)
    folder = (directory or backup_config(settings).dir).resolve()
    entries, partial = mf.scan(folder)
    result = PruneResult(folder, dry_run, decide(entries, keep_days=keep_days,
                                                 keep_last=keep_last, now=now))
    by_path = {e.path: e for e in entries}
    for decision in result.deleted:
        if not dry_run:
            entry = by_path[decision.path]
            entry.manifest_file.unlink(missing_ok=True)  # first: no longer "complete"
            _remove(entry.path)
    for leftover in partial:
        # Only the leftovers of interrupted backups: a dump without a manifest (or with
        # an unreadable one) may be someone's only copy, and is listed, not deleted.
        if not leftover.name.endswith(mf.PARTIAL):
            continue
        age = now - datetime.fromtimestamp(_last_change(leftover), UTC)
        # A backup that still runs holds its partial's lock (manifest.hold), however long.
        if age > STALE_PARTIAL and mf.abandoned(leftover):
            result.removed_incomplete.append(leftover)
            if not dry_run:
                _remove(leftover)
    return result


def _last_change(path: Path) -> float:
    """The newest mtime in ``path``: a directory-format dump that is still being
    written changes its files, not the folder's own mtime."""
    if not path.is_dir():
        return path.stat().st_mtime
    return max([path.stat().st_mtime, *(p.stat().st_mtime for p in path.rglob("*"))])


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
