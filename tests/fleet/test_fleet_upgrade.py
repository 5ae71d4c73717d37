"""`umbau fleet upgrade`, `status` and `check` on real databases of the Etsy example."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fleet_support import (
    BACKUPS,
    CONFIG,
    HEAD,
    RELEASE_1_0,
    REVISIONS_1_1,
    Fleet,
    control_rows,
    revision,
    targets_toml,
    upgrades,
)

from umbau.cli import main
from umbau.errors import EXIT_FLEET_FAILED, EXIT_PENDING

pytestmark = [pytest.mark.db, pytest.mark.slow]


def fleet_cli(*args: str) -> int:
    return main(["--config", str(CONFIG), "fleet", *args])


def test_twenty_databases_one_broken(make_fleet: Fleet, database_url: str, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    fleet = make_fleet(20, broken={7})
    broken = sorted(fleet)[7]
    targets = targets_toml(tmp_path / "fleet.toml", fleet)
    code = fleet_cli("upgrade", "--targets", str(targets), "--control-url", database_url,
                     "--parallel", "2", "--format", "json")
    out = capsys.readouterr()
    assert code == EXIT_FLEET_FAILED, out.err
    result = json.loads(out.out)
    assert result["counts"] == {"total": 20, "done": 19, "failed": 1, "skipped": 0,
                                "running": 0, "pending": 0}
    failed = [t for t in result["targets"] if t["state"] == "failed"]
    assert [t["name"] for t in failed] == [broken]
    assert 'relation "shops" already exists' in failed[0]["error"]
    assert failed[0]["exit_code"] == 7
    assert f"1 of 20 target(s) failed (first: {broken}" in out.err
    for name, url in fleet.items():
        expected = RELEASE_1_0 if name == broken else HEAD
        assert revision(url) == expected, name
    # the broken database is left as it was: its failed step was rolled back
    assert upgrades(fleet[broken]) == [(RELEASE_1_0, "success"), ("6a2e4c81b3f5", "failed")]


def test_status_and_check_agree_with_the_databases(make_fleet: Fleet, database_url: str,
                                                   tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    fleet = make_fleet(4, broken={2})
    broken = sorted(fleet)[2]
    targets = str(targets_toml(tmp_path / "fleet.toml", fleet))
    assert fleet_cli("check", "--targets", targets, "--control-url", database_url) \
        == EXIT_PENDING
    assert fleet_cli("upgrade", "--targets", targets, "--control-url", database_url,
                     "-q") == EXIT_FLEET_FAILED
    capsys.readouterr()
    assert fleet_cli("status", "--control-url", database_url, "--format", "json") \
        == EXIT_PENDING
    status = json.loads(capsys.readouterr().out)
    for row in status["targets"]:
        assert row["current"] == [revision(fleet[row["name"]])]
        assert row["database"] == ("pending" if row["name"] == broken else "up-to-date")
        assert row["state"] == ("failed" if row["name"] == broken else "done")
    assert status["totals"] == {"pending": 1, "up-to-date": 3}

    # the fix, then a rerun of the same run retries the failed target only
    from sqlalchemy import text

    from umbau.postgres.connect import connect

    with connect(fleet[broken]) as conn:
        conn.execute(text("DROP TABLE shops"))
        conn.commit()
    run_id = status["run"]["run_id"]
    assert fleet_cli("upgrade", "--run", run_id, "--retry-failed", "--targets", targets,
                     "--control-url", database_url, "-q") == 0
    assert fleet_cli("check", "--targets", targets, "--control-url", database_url) == 0
    assert "4 target(s): 4 up-to-date" in capsys.readouterr().out
    assert {n: s for n, (s, _) in control_rows(database_url, run_id).items()} == \
        dict.fromkeys(fleet, "done")
    for url in fleet.values():  # each revision ran once: 1.0.0 (the template) and 1.1.0
        succeeded = [r for r, outcome in upgrades(url) if outcome == "success"]
        assert len(succeeded) == len(set(succeeded)) == 1 + REVISIONS_1_1


def test_a_failed_canary_touches_nothing_else(make_fleet: Fleet, database_url: str,
                                              tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    fleet = make_fleet(5, broken={3})
    names = sorted(fleet)
    targets = str(targets_toml(tmp_path / "fleet.toml", fleet))
    code = fleet_cli("upgrade", "--targets", targets, "--control-url", database_url,
                     "--canary", f"{names[0]},{names[3]}", "--format", "json")
    result = json.loads(capsys.readouterr().out)
    assert code == EXIT_FLEET_FAILED
    states = {t["name"]: t["state"] for t in result["targets"]}
    assert states == {names[0]: "done", names[1]: "skipped", names[2]: "skipped",
                      names[3]: "failed", names[4]: "skipped"}
    for name in (names[1], names[2], names[4]):
        assert revision(fleet[name]) == RELEASE_1_0
        assert upgrades(fleet[name]) == [(RELEASE_1_0, "success")]  # nothing ran there


def test_the_failure_budget_stops_new_starts(make_fleet: Fleet, database_url: str,
                                             tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    fleet = make_fleet(6, broken={1, 2, 4})
    names = sorted(fleet)
    targets = str(targets_toml(tmp_path / "fleet.toml", fleet))
    code = fleet_cli("upgrade", "--targets", targets, "--control-url", database_url,
                     "--max-failures", "2", "--format", "json")
    result = json.loads(capsys.readouterr().out)
    assert code == EXIT_FLEET_FAILED
    states = [t["state"] for t in result["targets"]]
    assert states == ["done", "failed", "failed", "skipped", "skipped", "skipped"]
    skipped = [t for t in result["targets"] if t["state"] == "skipped"]
    assert all("failure budget (2) is spent" in t["error"] for t in skipped)
    for name in names[3:]:
        assert revision(fleet[name]) == RELEASE_1_0


def test_tags_select_the_targets(make_fleet: Fleet, database_url: str, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    fleet = make_fleet(3)
    names = sorted(fleet)
    tags = {names[0]: ["eu", "beta"], names[1]: ["eu"], names[2]: ["us", "beta"]}
    targets = str(targets_toml(tmp_path / "fleet.toml", fleet, tags))
    assert fleet_cli("upgrade", "--targets", targets, "--control-url", database_url,
                     "--tags", "beta", "-q") == 0
    assert [revision(fleet[n]) for n in names] == [HEAD, RELEASE_1_0, HEAD]


def test_each_target_gets_the_backup_policy(make_fleet: Fleet, database_url: str,
                                            tmp_path: Path) -> None:
    fleet = make_fleet(2)
    targets = str(targets_toml(tmp_path / "fleet.toml", fleet))
    before = set(BACKUPS.glob("*.json")) if BACKUPS.exists() else set()
    assert fleet_cli("upgrade", "--targets", targets, "--control-url", database_url,
                     "--backup", "always", "-q") == 0
    manifests = set(BACKUPS.glob("*.json")) - before
    assert sorted(json.loads(m.read_text())["database"] for m in manifests) == sorted(fleet)
