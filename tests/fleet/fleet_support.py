"""Helpers of the fleet tests: the Etsy example as the fleet's project, databases at its
release 1.0.0, and ways to read what happened in each of them."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import text

from umbau.postgres.connect import connect
from umbau.settings import Settings, load_settings

#: make_fleet(n) -> {target name: URL}
Fleet = Callable[..., dict[str, str]]

ROOT = Path(__file__).resolve().parents[2]
ETSY = ROOT / "examples" / "etsy_sevdesk"
def _config() -> Path:
    """The Etsy example's settings, with backups in a temporary folder, not in examples/."""
    folder = Path(tempfile.mkdtemp(prefix="umbau-fleet-tests-"))
    atexit.register(shutil.rmtree, folder, True)
    config = folder / "umbau.toml"
    config.write_text(f'[tool.umbau]\nalembic_config = "{ETSY / "alembic.ini"}"\n'
                      'metadata = "etsy_app.models:Base.metadata"\n'
                      f'[tool.umbau.backup]\ndir = "{folder / "backups"}"\n')
    return config


CONFIG = _config()
BACKUPS = CONFIG.parent / "backups"
RELEASE_1_0 = "3f1c2a9b7d10"
HEAD = "f2b87e5d0a39"
REVISIONS_1_1 = 6  # revisions from 1.0.0 to the head


def etsy_settings() -> Settings:
    return load_settings(environ={}, config_file=CONFIG)


def revision(url: str) -> str | None:
    """The revision in a target's alembic_version (None when it has none)."""
    with connect(url) as conn:
        if not conn.execute(text("SELECT to_regclass('alembic_version')")).scalar():
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrades(url: str) -> list[tuple[str, str]]:
    """(revision, outcome) of every upgrade step umbau recorded in a target."""
    with connect(url) as conn:
        if not conn.execute(text("SELECT to_regclass('umbau_history')")).scalar():
            return []
        rows = conn.execute(text("SELECT revision, outcome FROM umbau_history "
                                 "WHERE direction = 'upgrade' ORDER BY id"))
        return [(r[0], r[1]) for r in rows]


def targets_toml(path: Path, urls: dict[str, str], tags: dict[str, list[str]] | None = None,
                 ) -> Path:
    """A TOML targets file of ``urls`` (name -> URL)."""
    lines = []
    for name, url in urls.items():
        lines += ["[[targets]]", f'name = "{name}"', f'url = "{url}"',
                  f"tags = {(tags or {}).get(name, [])!r}".replace("'", '"'), ""]
    path.write_text("\n".join(lines))
    return path


def spawn(*args: str) -> subprocess.Popen[str]:
    """The real ``umbau`` in a process of its own, on the Etsy project."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("UMBAU_")}
    return subprocess.Popen([sys.executable, "-m", "umbau", "--config", str(CONFIG), *args],
                            cwd=ETSY, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def control_rows(control_url: str, run_id: str) -> dict[str, tuple[str, int]]:
    """name -> (state, attempts) of a run's targets."""
    with connect(control_url) as conn:
        rows = conn.execute(text("SELECT name, state, attempts FROM umbau_fleet_targets "
                                 "WHERE run_id = :r"), {"r": run_id})
        return {r[0]: (r[1], r[2]) for r in rows}
