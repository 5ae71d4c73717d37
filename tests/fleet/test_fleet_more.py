"""Targets from a query, canary by count, failure rate, progress events, and Ctrl-C of a
`--parallel` run."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from fleet_support import (
    CONFIG,
    HEAD,
    RELEASE_1_0,
    Fleet,
    control_rows,
    etsy_settings,
    revision,
    spawn,
    targets_toml,
)
from sqlalchemy import text

from umbau.cli import main
from umbau.errors import EXIT_FLEET_FAILED, EXIT_FLEET_STOPPED
from umbau.events import Event
from umbau.fleet import TargetSource, fleet_options, upgrade
from umbau.fleet.state import budget
from umbau.postgres.connect import connect
from umbau.postgres.scratch import database_url as url_of

pytestmark = [pytest.mark.db, pytest.mark.slow]


def fleet_cli(*args: str) -> int:
    return main(["--config", str(CONFIG), "fleet", *args])


def test_targets_from_a_query_on_the_control_database(make_fleet: Fleet,
                                                      database_url: str) -> None:
    fleet = make_fleet(3)
    names = sorted(fleet)
    with connect(database_url) as conn:
        conn.execute(text("CREATE TABLE tenants (name text, url text, active bool)"))
        for i, name in enumerate(names):
            conn.execute(text("INSERT INTO tenants VALUES (:n, :u, :a)"),
                         {"n": name, "u": fleet[name], "a": i != 1})
        conn.commit()
    assert fleet_cli("upgrade", "--targets-query",
                     "SELECT name, url FROM tenants WHERE active ORDER BY name",
                     "--control-url", database_url, "-q") == 0
    assert [revision(fleet[n]) for n in names] == [HEAD, RELEASE_1_0, HEAD]
    assert fleet_cli("upgrade", "--targets-query", "SELECT nme FROM tenants",
                     "--control-url", database_url) == 2


def test_canary_by_count_and_failure_rate(make_fleet: Fleet, database_url: str) -> None:
    fleet = make_fleet(4, broken={0})
    settings = etsy_settings()
    source = TargetSource(url_template=url_of(database_url, "DB").replace("/DB", "/{name}"),
                          databases=tuple(sorted(fleet)))
    options = fleet_options(settings, source, canary=("1",), control_url=database_url)
    result = upgrade(settings, options)
    assert result.exit_code == EXIT_FLEET_FAILED
    assert [t.state for t in result.targets] == ["failed", "skipped", "skipped", "skipped"]
    assert [t.canary for t in result.targets] == [True, False, False, False]
    assert budget(None, 0.05, 200) == 10
    assert budget(3, 0.05, 200) == 3
    assert budget(None, None, 200) is None


def test_progress_events_count_down_to_zero(make_fleet: Fleet, database_url: str) -> None:
    fleet = make_fleet(3)
    events: list[Event] = []
    source = TargetSource(url_template=url_of(database_url, "DB").replace("/DB", "/{name}"),
                          databases=tuple(sorted(fleet)))
    settings = etsy_settings()
    upgrade(settings, fleet_options(settings, source, control_url=database_url),
            on_event=events.append)
    assert events[0] == Event("plan", total=3)
    finished = [e for e in events if e.kind == "fleet_target"]
    assert [e.message.split(":")[0] for e in finished if e.message] == sorted(fleet)
    assert finished[-1].message and "3 done, 0 failed/skipped, 0 remaining, ETA 0s" in \
        finished[-1].message
    assert any(e.kind == "fleet_progress" for e in events)


def test_ctrl_c_of_a_parallel_run_lets_running_targets_finish(
        make_fleet: Fleet, database_url: str, tmp_path: Path) -> None:
    fleet = make_fleet(10)
    listing = tmp_path / "fleet.txt"
    listing.write_text("\n".join(fleet.values()) + "\n")
    parent = spawn("fleet", "upgrade", "--targets", str(listing), "--run", "p",
                   "--control-url", database_url, "--parallel", "2")
    deadline = time.monotonic() + 120
    while True:
        assert time.monotonic() < deadline
        rows = control_rows(database_url, "p") if _has_run(database_url) else {}
        if sum(s == "done" for s, _ in rows.values()) >= 2:
            break
        time.sleep(0.1)
    parent.send_signal(signal.SIGINT)  # to the parent only: it tells its workers
    _, err = parent.communicate(timeout=120)
    assert parent.returncode == EXIT_FLEET_STOPPED, err
    rows = control_rows(database_url, "p")
    assert "running" not in {s for s, _ in rows.values()}
    for name, url in fleet.items():
        assert revision(url) == (HEAD if rows[name][0] == "done" else RELEASE_1_0)


def _has_run(control_url: str) -> bool:
    with connect(control_url) as conn:
        if conn.execute(text("SELECT to_regclass('umbau_fleet_targets')")).scalar() is None:
            return False
        return bool(conn.execute(text("SELECT count(*) FROM umbau_fleet_targets")).scalar())


@pytest.mark.parametrize("parallel", [1, 2])
def test_each_target_reports_start_and_outcome_with_its_duration(
        make_fleet: Fleet, database_url: str, parallel: int) -> None:
    fleet = make_fleet(4, broken={1})
    broken = sorted(fleet)[1]
    events: list[Event] = []
    source = TargetSource(url_template=url_of(database_url, "DB").replace("/DB", "/{name}"),
                          databases=tuple(sorted(fleet)))
    settings = etsy_settings()
    result = upgrade(settings, fleet_options(settings, source, control_url=database_url,
                                             parallel=parallel, run_id=f"ev{parallel}"),
                     on_event=events.append)
    assert result.exit_code == EXIT_FLEET_FAILED
    started = [e.data["target"] for e in events if e.kind == "fleet_target_start"]
    done = {e.data["target"]: e for e in events if e.kind == "fleet_target_done"}
    failed = {e.data["target"]: e for e in events if e.kind == "fleet_target_failed"}
    assert sorted(started) == sorted(fleet)  # once each
    assert set(done) == set(fleet) - {broken} and set(failed) == {broken}
    for event in [*done.values(), *failed.values()]:
        assert event.duration is not None and 0 < event.duration < 120
        assert event.data["run_id"] == f"ev{parallel}" and event.data["kind"] == "upgrade"
    assert all(e.revision == HEAD and e.data["steps"] == 6 for e in done.values())
    assert failed[broken].data["exit_code"] == result.targets[1].exit_code
    assert failed[broken].error == result.targets[1].error


def test_a_fleet_run_writes_its_metrics(make_fleet: Fleet, database_url: str,
                                        tmp_path: Path) -> None:
    """`--metrics-textfile` on a real fleet run with two worker processes: every target
    is counted once, by outcome, in the parent's metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    fleet = make_fleet(3, broken={1})
    targets = targets_toml(tmp_path / "fleet.toml", fleet)
    textfile = tmp_path / "umbau.prom"
    process = spawn("--metrics-textfile", str(textfile), "fleet", "upgrade", "--targets",
                    str(targets), "--control-url", database_url, "--parallel", "2",
                    "--backup", "never", "--format", "json")
    _out, err = process.communicate(timeout=300)
    assert process.returncode == EXIT_FLEET_FAILED, err
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(textfile.read_text())
               for s in family.samples}
    assert samples[("umbau_fleet_targets_total",
                    (("kind", "upgrade"), ("outcome", "done")))] == 2
    assert samples[("umbau_fleet_targets_total",
                    (("kind", "upgrade"), ("outcome", "failed")))] == 1
    assert samples[("umbau_fleet_target_duration_seconds_count",
                    (("kind", "upgrade"), ("outcome", "done")))] == 2
    assert samples[("umbau_fleet_targets_running", (("kind", "upgrade"),))] == 0
