"""``umbau demo --release [--fail-smoke]``: the Etsy release run end to end by ``umbau
release`` on the embedded PostgreSQL, and its automatic rollback."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from umbau.cli import main
from umbau.commands.demo import demo_release
from umbau.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "etsy_sevdesk"
HEAD = "f2b87e5d0a39"
FIRST = "3f1c2a9b7d10"

pytestmark = [pytest.mark.db, pytest.mark.slow]


def checkout_files() -> set[str]:
    return {str(p.relative_to(EXAMPLE)) for p in EXAMPLE.rglob("*")
            if "__pycache__" not in p.parts}


def libpq(url: str) -> str:
    return "postgresql" + url.split("postgresql+psycopg", 1)[-1]


def test_the_release_runs_end_to_end(tmp_path: Path) -> None:
    files = checkout_files()
    result = demo_release(load_settings(cwd=tmp_path, environ={}), folder=tmp_path / "d",
                          orders=500)
    assert result.release.outcome == "released"
    assert [s.outcome for s in result.release.steps] == ["done"] * 10
    assert result.before is not None and list(result.before.current) == [FIRST]
    assert result.after is not None and list(result.after.current) == [HEAD]
    assert result.env_keys == {"gone": ["ETSY_SHOP_ID"], "new": ["ETSY_DEFAULT_SHOP_ID"]}
    # the rename kept every other line exactly
    assert result.env_after == result.env_before.replace("\nETSY_SHOP_ID=",
                                                         "\nETSY_DEFAULT_SHOP_ID=")
    work = Path(result.work)
    assert not (work / ".run" / "app.pid").exists()  # the service was stopped
    assert checkout_files() == files  # nothing written into the example
    assert result.as_dict()["release"]["outcome"] == "released"


def test_a_failing_smoke_test_rolls_everything_back(tmp_path: Path) -> None:
    result = demo_release(load_settings(cwd=tmp_path, environ={}), folder=tmp_path / "d",
                          orders=500, fail_smoke=True, keep=True)
    try:
        assert result.error is not None and result.error["exit_code"] == 35
        assert "UMBAU_DEMO_FAIL_SMOKE=1" in result.error["message"]
        assert result.release.outcome == "rolled back"
        outcomes = {s.name: s.outcome for s in result.release.steps}
        assert outcomes["smoke"] == "failed" and outcomes["env"] == "undone"
        assert result.after is not None and list(result.after.current) == [FIRST]
        assert result.env_restored and "\nETSY_SHOP_ID=" in result.env_after
        with psycopg.connect(libpq(result.url)) as conn:
            assert conn.execute("SELECT to_regclass('shops')").fetchone() == (None,)
            assert conn.execute("SELECT count(*) FROM orders").fetchone() == (500,)
            steps = conn.execute("SELECT step_name, outcome FROM umbau_releases "
                                 "ORDER BY id").fetchall()
        assert ("smoke", "failed") in steps
    finally:
        from umbau.postgres import embedded

        embedded.start(tmp_path / "d" / "pg").stop()


def test_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--fail-smoke"]) == 2
    assert "--fail-smoke goes with --release" in capsys.readouterr().err
    code = main(["demo", "--release", "--orders", "300", "--folder", str(tmp_path / "d"),
                 "--format", "json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["release"]["outcome"] == "released" and out["env_restored"] is False
    assert out["env_keys"]["new"] == ["ETSY_DEFAULT_SHOP_ID"]
