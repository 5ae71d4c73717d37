"""backups list and prune: retention that never deletes what it must keep."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from umbau.backup import manifest as mf
from umbau.backup.dump import backup
from umbau.backup.prune import list_backups, prune
from umbau.cli import main
from umbau.settings import Settings

NOW = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)


def _fake(folder: Path, days_old: float, verified: bool | None = None) -> Path:
    created = NOW - timedelta(days=days_old)
    name = mf.backup_name("shop", created, ("r1",))
    folder.mkdir(exist_ok=True)
    dump = folder / f"{name}.dump"
    dump.write_bytes(b"PGDMP")
    verification = None if verified is None else {"ok": verified, "restore_test": None}
    mf.write_json(mf.manifest_path(dump), {"created": created.isoformat(), "revision": ["r1"],
                                           "size": 5, "format": "custom",
                                           "verification": verification})
    return dump


def test_prune_keeps_young_newest_verified_and_last_n(tmp_path: Path) -> None:
    folder = tmp_path / "b"
    old_verified = _fake(folder, 90, verified=True)
    old_failed = _fake(folder, 80, verified=False)
    old_plain = _fake(folder, 60)
    kept_by_last = _fake(folder, 45)
    young = _fake(folder, 3)
    settings = Settings(root=tmp_path)
    result = prune(settings, keep_days=30, keep_last=2, directory=folder, now=NOW)
    reasons = {Path(d.path).name: d.reason for d in result.decisions}
    assert reasons[young.name] == "newest backup"
    assert reasons[old_verified.name] == "newest verified backup"
    assert reasons[kept_by_last.name] == "one of the newest 2"
    assert {Path(d.path) for d in result.deleted} == {old_failed, old_plain}
    assert not old_plain.exists() and not mf.manifest_path(old_plain).exists()
    assert old_verified.exists() and young.exists() and kept_by_last.exists()


def test_prune_dry_run_deletes_nothing_and_never_the_only_backup(tmp_path: Path) -> None:
    folder = tmp_path / "b"
    only = _fake(folder, 400)
    older = _fake(folder, 500)
    result = prune(Settings(root=tmp_path), keep_days=30, directory=folder, dry_run=True,
                   now=NOW)
    assert [Path(d.path) for d in result.deleted] == [older] and older.exists()
    result = prune(Settings(root=tmp_path), keep_days=0, directory=folder, now=NOW)
    assert only.exists() and not older.exists()


def test_interrupted_backups_are_not_listed_as_complete(tmp_path: Path) -> None:
    folder = tmp_path / "b"
    _fake(folder, 1)
    (folder / "shop_20260301T000000Z_r1.dump.partial").write_bytes(b"PGDMP")
    (folder / "shop_20260228T000000Z_r1.dump").write_bytes(b"PGDMP")  # manifest missing
    (folder / "shop_20260227T000000Z_r1.json").write_text("{}")  # its dump is gone
    listed = list_backups(Settings(root=tmp_path), folder)
    assert len(listed.backups) == 1
    assert [p.name for p in listed.incomplete] == ["shop_20260227T000000Z_r1.json",
                                                   "shop_20260228T000000Z_r1.dump",
                                                   "shop_20260301T000000Z_r1.dump.partial"]
    # Prune removes stale leftovers of interrupted backups only: a dump without a
    # manifest may be someone's only copy.
    result = prune(Settings(root=tmp_path), directory=folder, now=datetime.now(UTC)
                   + timedelta(days=2))
    assert [p.name for p in result.removed_incomplete] == [
        "shop_20260301T000000Z_r1.dump.partial"]
    assert (folder / "shop_20260228T000000Z_r1.dump").exists()
    assert not (folder / "shop_20260301T000000Z_r1.dump.partial").exists()


def test_a_partial_folder_still_being_written_is_not_stale(tmp_path: Path) -> None:
    import os
    import time

    folder = tmp_path / "b"
    _fake(folder, 1)
    partial = folder / "shop_20260301T000000Z_r1.partial"
    partial.mkdir()
    (partial / "toc.dat").write_bytes(b"PGDMP")
    week_ago = time.time() - 7 * 86400
    os.utime(partial, (week_ago, week_ago))  # the folder's own mtime is old, its file new
    result = prune(Settings(root=tmp_path), directory=folder, now=datetime.now(UTC))
    assert result.removed_incomplete == [] and partial.exists()


def test_cli_list_and_prune(settings: Settings, tmp_path: Path, capsys) -> None:
    result = backup(settings)
    assert main(["--database-url", settings.database_url, "backup", "verify", "-q",
                 str(result.path)]) == 0
    folder = str(tmp_path / "backups")
    assert main(["backups", "list", "--dir", folder]) == 0
    out = capsys.readouterr().out
    assert result.path.name in out and "yes" in out and "r2" in out
    assert main(["backups", "list", "--dir", folder, "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["backups"][0]["verified"] is True
    assert main(["backups", "prune", "--keep-days", "0", "--dir", folder]) == 0
    assert "newest backup" in capsys.readouterr().out and result.path.exists()


@pytest.mark.parametrize("days", ["nan", "inf", "-inf", "1e6", "-1"])
def test_prune_refuses_days_that_are_not_a_retention(tmp_path: Path, capsys,
                                                     days: str) -> None:
    folder = tmp_path / "b"
    kept = [_fake(folder, 400), _fake(folder, 90), _fake(folder, 1)]
    stale = folder / "shop_20250101T000000Z_r1.dump.partial"
    stale.write_bytes(b"PGDMP")
    os.utime(stale, (0, 0))
    code = main(["backups", "prune", "--keep-days", days, "--dir", str(folder)])
    err = capsys.readouterr().err
    assert code == 2
    assert [line for line in err.splitlines() if line.strip()] == [
        f"umbau: error: --keep-days {float(days):g}: use a number of days from 0 to "
        "36,500 (e.g. 30)"]
    assert all(p.exists() for p in kept) and stale.exists()


def test_prune_removes_old_partials_only_when_their_backup_is_gone(tmp_path: Path) -> None:
    folder = tmp_path / "b"
    _fake(folder, 1)
    held, dead = (folder / f"shop_2025010{i}T000000Z_r1.dump.partial" for i in (1, 2))
    for path in (held, dead):
        path.write_bytes(b"PGDMP")
        os.utime(path, (0, 0))
    lock = mf.hold(held)  # a backup that still writes it, however old the file
    try:
        result = prune(Settings(root=tmp_path), keep_days=30, directory=folder, now=NOW)
    finally:
        os.close(lock)
    assert result.removed_incomplete == [dead]
    assert held.exists() and not dead.exists()
