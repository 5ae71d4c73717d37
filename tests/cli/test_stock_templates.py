"""Alembic's stock templates (`alembic init -t generic|async|pyproject`) run unchanged."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from umbau.cli import main
from umbau.postgres.connect import connect

pytestmark = pytest.mark.db

ALEMBIC = shutil.which("alembic", path=str(Path(sys.executable).parent))


def _stock_project(folder: Path, template: str) -> Path:
    assert ALEMBIC
    subprocess.run([ALEMBIC, "init", "-t", template, "migrations"], cwd=folder, check=True,
                   capture_output=True)
    (folder / "migrations" / "versions" / "a1.py").write_text(
        '"""create t"""\nfrom alembic import op\nimport sqlalchemy as sa\n\n'
        'revision = "a1"\ndown_revision = None\nbranch_labels = None\ndepends_on = None\n\n\n'
        'def upgrade():\n    op.create_table("t", sa.Column("id", sa.Integer, primary_key=True))'
        '\n\n\ndef downgrade():\n    op.drop_table("t")\n')
    return folder


def _run(folder: Path, url: str, capsys: pytest.CaptureFixture[str],
         *args: str) -> tuple[int, str, str]:
    config = ["--config", str(folder / "umbau.toml")] if args[0] != "init" else []
    code = main([*config, "--database-url", url, *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("template", ["generic", "async", "pyproject"])
def test_stock_template_runs_unchanged(template: str, tmp_path: Path, database_url: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("greenlet")  # the async template imports sqlalchemy.ext.asyncio
    folder = _stock_project(tmp_path, template)
    env_before = (folder / "migrations" / "env.py").read_text()
    code, out, _ = _run(folder, database_url, capsys, "init", str(folder))
    assert code == 0 and "already shares the connection" in out
    code, out, err = _run(folder, database_url, capsys, "upgrade")
    assert code == 0, err
    assert "now at a1" in out
    assert "INFO" not in err  # Alembic's INFO lines are off by default
    code, out, _ = _run(folder, database_url, capsys, "status")
    assert code == 0 and "up-to-date" in out
    code, out, err = _run(folder, database_url, capsys, "downgrade", "base", "--yes")
    assert code == 0, err
    with connect(database_url) as conn:
        assert conn.execute(text("SELECT to_regclass('t')")).scalar() is None
    assert (folder / "migrations" / "env.py").read_text() == env_before


def test_verbose_shows_alembic_info_lines(tmp_path: Path, database_url: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    folder = _stock_project(tmp_path, "generic")
    _run(folder, database_url, capsys, "init", str(folder))
    umbau_logger = logging.getLogger("umbau")
    level = umbau_logger.level
    try:
        code, _, err = _run(folder, database_url, capsys, "status", "-v")
    finally:
        umbau_logger.setLevel(level)
    assert code == 0 and "INFO  [alembic.runtime.migration]" in err


def test_async_template_without_greenlet_is_one_line(tmp_path: Path, database_url: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """A real process in which greenlet cannot be imported (as in a venv without it)."""
    folder = _stock_project(tmp_path, "async")
    _run(folder, database_url, capsys, "init", str(folder))
    script = ("import sys; sys.modules['greenlet'] = None\n"
              "from umbau.cli import main; sys.exit(main())")
    env = {k: v for k, v in os.environ.items() if not k.startswith("UMBAU_")}
    # status: its first step is running env.py (an upgrade's lint gate renders offline
    # first, and SQLAlchemy's asyncio package imports on a second attempt without greenlet)
    done = subprocess.run([sys.executable, "-c", script, "--database-url", database_url,
                           "status"], cwd=folder, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 19, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "env.py:" in done.stderr and "pip install 'sqlalchemy[asyncio]'" in done.stderr
