"""Round trip of the two example applications with generated data: backup, drop,
restore -> identical row counts and per-table checksums; then a passing restore-test."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest
from backup_support import table_checksums

from umbau.backup import pg
from umbau.backup.dump import DumpOptions, backup
from umbau.backup.restore import restore
from umbau.backup.verify import verify
from umbau.commands.migrate import upgrade
from umbau.postgres.scratch import recreate_database
from umbau.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
APPS = [("etsy_sevdesk", "etsy_app"), ("ablage", "ablage_app")]


def _datagen(folder: Path, package: str):
    if not (folder / package / "datagen.py").is_file() or not list(
            (folder / "migrations" / "versions").glob("*.py")):
        pytest.skip(f"examples/{folder.name} has no {package}/datagen.py or no revisions yet")
    sys.path.insert(0, str(folder))
    try:
        return importlib.import_module(f"{package}.datagen")
    finally:
        sys.path.remove(str(folder))


@pytest.mark.parametrize("example, package", APPS)
@pytest.mark.parametrize("fmt", ["custom", "directory"])
def test_example_round_trip(example: str, package: str, fmt: str, database_url: str,
                            server_url: str, tmp_path: Path) -> None:
    folder = ROOT / "examples" / example
    datagen = _datagen(folder, package)
    settings = load_settings(cwd=folder, environ={}, flags={"database_url": database_url})
    settings = settings.with_overrides(sections={**settings.sections,
                                                 "backup": {"dir": str(tmp_path)}})
    upgrade(settings, "head", allow_unsafe=True, backup="never")
    datagen.generate(database_url, 400, seed=7)
    before = table_checksums(database_url)
    assert sum(rows for rows, _ in before.values()) > 400

    options = DumpOptions(format=fmt, jobs=2 if fmt == "directory" else 1)
    result = backup(settings, options)
    name = pg.database_name(database_url)
    recreate_database(server_url, name)  # "drop"
    assert table_checksums(database_url) == {}
    restored = restore(settings, result.path)
    assert restored.revision == tuple(result.manifest["revision"])
    after = table_checksums(database_url)
    history = "public.umbau_history"
    assert {k: v for k, v in after.items() if k != history} == \
        {k: v for k, v in before.items() if k != history}
    assert after[history][0] == before[history][0] + 1  # the restore is recorded

    checked = verify(settings, result.path, restore_test=True)
    assert checked.ok and checked.restore_test is not None
    assert checked.restore_test.revision_ok is True
