"""A project for the dashboard: the Etsy example at 1.0.0 (1.1.0 pending), with history
rows and its own backup folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from umbau.commands.migrate import upgrade
from umbau.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
ETSY = ROOT / "examples" / "etsy_sevdesk"


@pytest.fixture
def etsy_settings(database_url: str, tmp_path: Path) -> Settings:
    settings = load_settings(cwd=ETSY, environ={}, flags={"database_url": database_url})
    settings = settings.with_overrides(sections={**settings.sections,
                                                 "backup": {"dir": str(tmp_path / "bk")}})
    upgrade(settings, "3f1c2a9b7d10", backup="never")
    return settings
