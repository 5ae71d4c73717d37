"""``umbau fleet backfill``: one backfill on every target the way ``fleet upgrade`` does
it — a broken target fails alone, a failed canary touches nothing else, kill -9 of a
worker mid-backfill and a rerun change every row exactly once, status reads each target."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from fleet_support import CONFIG, Fleet, control_rows, spawn, targets_toml
from sqlalchemy import text

from umbau.cli import main
from umbau.errors import EXIT_FLEET_FAILED, EXIT_OK, EXIT_PENDING
from umbau.postgres.connect import connect

pytestmark = [pytest.mark.db, pytest.mark.slow]

ROWS = 600
# beside the settings file: the project root, which load_backfill puts on sys.path
(CONFIG.parent / "fleet_backfills.py").write_text('''
from umbau.backfill import Backfill

plus = Backfill(name="plus", table="customers", set={"name": "name || '+'"},
                verify="name LIKE '%+' AND name NOT LIKE '%++'")
slow_plus = Backfill(name="slow_plus", table="customers", set={"name": "name || '+'"},
                     verify="name LIKE '%+' AND name NOT LIKE '%++'",
                     batch_size=100, min_batch_size=100, max_batch_size=100, pause=0.4)
''')


def fleet_cli(*args: str) -> int:
    return main(["--config", str(CONFIG), "fleet", *args])


@pytest.fixture
def customers_fleet(make_fleet: Fleet) -> Callable[..., dict[str, str]]:
    """``customers_fleet(n, broken={i})``: n databases with ROWS customers each; the
    broken ones have no customers table."""
    def make(count: int, broken: frozenset[int] | set[int] = frozenset()) -> dict[str, str]:
        fleet = make_fleet(count)
        for i, url in enumerate(fleet.values()):
            with connect(url) as conn:
                if i in broken:
                    conn.execute(text("DROP TABLE customers CASCADE"))
                else:
                    conn.execute(text("INSERT INTO customers (etsy_buyer_id, name) SELECT g, "
                                      "'c' || g FROM generate_series(1, :n) g"), {"n": ROWS})
                conn.commit()
        return fleet
    return make


def names(url: str) -> list[str] | None:
    """Every customer name of a target (None: no customers table)."""
    with connect(url) as conn:
        if conn.execute(text("SELECT to_regclass('customers')")).scalar() is None:
            return None
        return [r[0] for r in conn.execute(text("SELECT name FROM customers ORDER BY id"))]


def changed_once(url: str) -> bool:
    found = names(url)
    return found is not None and len(found) == ROWS and \
        all(n.endswith("+") and not n.endswith("++") for n in found)


def untouched(url: str) -> bool:
    found = names(url)
    return found is None or not any(n.endswith("+") for n in found)


def test_five_databases_one_broken(customers_fleet: Callable[..., dict[str, str]],
                                   database_url: str, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    fleet = customers_fleet(5, broken={2})
    broken = sorted(fleet)[2]
    targets = str(targets_toml(tmp_path / "fleet.toml", fleet))
    code = fleet_cli("backfill", "fleet_backfills:plus", "--targets", targets,
                     "--control-url", database_url, "--run", "b1", "--parallel", "2",
                     "--format", "json")
    out = json.loads(capsys.readouterr().out)
    assert code == EXIT_FLEET_FAILED
    assert out["run"]["kind"] == "backfill" and out["run"]["backfill"] == "fleet_backfills:plus"
    by_name = {t["name"]: t for t in out["targets"]}
    assert {n: t["state"] for n, t in by_name.items()} == {
        n: "failed" if n == broken else "done" for n in fleet}
    assert "customers" in by_name[broken]["error"]
    assert all(by_name[n]["rows"] == ROWS for n in fleet if n != broken)
    for name, url in fleet.items():
        assert changed_once(url) if name != broken else names(url) is None
    # status reads the backfill's state in each target; check says "not everywhere"
    assert fleet_cli("status", "--targets", targets, "--control-url", database_url,
                     "--run", "b1", "--format", "json") == EXIT_PENDING
    status = {t["name"]: t for t in json.loads(capsys.readouterr().out)["targets"]}
    assert {n: t["database"] for n, t in status.items()} == {
        n: "not-started" if n == broken else "done" for n in fleet}
    # fixed, then retried: only the broken target runs again, and the run succeeds
    with connect(fleet[broken]) as conn:
        conn.execute(text("CREATE TABLE customers (id int PRIMARY KEY, name text)"))
        conn.execute(text("INSERT INTO customers SELECT g, 'c' || g "
                          "FROM generate_series(1, :n) g"), {"n": ROWS})
        conn.commit()
    assert fleet_cli("backfill", "fleet_backfills:plus", "--targets", targets,
                     "--control-url", database_url, "--run", "b1", "--retry-failed",
                     "-q") == EXIT_OK
    assert all(changed_once(url) for url in fleet.values())
    assert control_rows(database_url, "b1") == {
        n: ("done", 2 if n == broken else 1) for n in fleet}
    assert fleet_cli("check", "--targets", targets, "--control-url", database_url,
                     "--run", "b1") == EXIT_OK


def test_a_failed_canary_touches_nothing_else(
        customers_fleet: Callable[..., dict[str, str]], database_url: str,
        tmp_path: Path) -> None:
    fleet = customers_fleet(4, broken={0})
    targets = str(targets_toml(tmp_path / "fleet.toml", fleet))
    assert fleet_cli("backfill", "fleet_backfills:plus", "--targets", targets,
                     "--control-url", database_url, "--run", "c", "--canary", "1",
                     "-q") == EXIT_FLEET_FAILED
    states = control_rows(database_url, "c")
    assert [states[n][0] for n in sorted(fleet)] == ["failed", "skipped", "skipped", "skipped"]
    assert all(untouched(url) for url in fleet.values())


def test_bad_input_changes_nothing(customers_fleet: Callable[..., dict[str, str]],
                                   database_url: str, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    fleet = customers_fleet(2)
    targets = str(targets_toml(tmp_path / "fleet.toml", fleet))
    assert fleet_cli("backfill", "fleet_backfills:nothing", "--targets", targets,
                     "--control-url", database_url) == 2
    assert "has no attribute 'nothing'" in capsys.readouterr().err
    with connect(database_url) as conn:  # not even the control tables
        assert conn.execute(text("SELECT to_regclass('umbau_fleet_runs')")).scalar() is None
    assert fleet_cli("upgrade", "--targets", targets, "--control-url", database_url,
                     "--run", "u", "-q") == 0
    # a run is one kind of work: an upgrade run is not joined by a backfill
    assert fleet_cli("backfill", "fleet_backfills:plus", "--targets", targets,
                     "--control-url", database_url, "--run", "u") == 2
    assert "run u is a fleet upgrade" in capsys.readouterr().err
    assert all(untouched(url) for url in fleet.values())


def test_kill_9_of_a_worker_mid_backfill_then_a_rerun_completes(
        customers_fleet: Callable[..., dict[str, str]], database_url: str,
        tmp_path: Path) -> None:
    fleet = customers_fleet(3)
    targets = str(targets_toml(tmp_path / "fleet.toml", fleet))
    worker = spawn("fleet", "backfill", "fleet_backfills:slow_plus", "--run", "k",
                   "--worker", "--targets", targets, "--control-url", database_url, "-q")
    first = sorted(fleet)[0]
    deadline = time.monotonic() + 120
    while not _some_rows_changed(fleet[first]):  # well inside the first target's backfill
        assert time.monotonic() < deadline and worker.poll() is None, worker.communicate()
        time.sleep(0.1)
    worker.send_signal(signal.SIGKILL)
    worker.communicate(timeout=30)
    assert control_rows(database_url, "k")[first] == ("running", 1)
    assert not changed_once(fleet[first])  # killed half-way
    assert fleet_cli("backfill", "fleet_backfills:slow_plus", "--run", "k", "--targets",
                     targets, "--control-url", database_url, "-q") == EXIT_OK
    rows = control_rows(database_url, "k")
    assert rows[first] == ("done", 2)  # taken over at once: the dead worker's session ended
    assert {s for s, _ in rows.values()} == {"done"}
    assert all(changed_once(url) for url in fleet.values())  # each row exactly once


def _some_rows_changed(url: str) -> bool:
    with connect(url) as conn:
        return bool(conn.execute(text("SELECT count(*) FROM customers "
                                      "WHERE name LIKE '%+'")).scalar())
