"""Health-aware throttling on a real server (issue 11, item 7): batches wait while an old
transaction is open or autovacuum runs on the table, say so in the progress, and go on
once the condition ends. Replica lag: read on a primary without standbys."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from tests.backfill.conftest import fill, scalar
from umbau.backfill import Backfill, backfill_status, run_backfill
from umbau.backfill.options import resolve
from umbau.cli import main
from umbau.errors import SettingsError
from umbau.events import Event
from umbau.postgres import health
from umbau.postgres.driver import connect_raw
from umbau.settings import Settings


def _in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = fn()
        except BaseException as exc:  # handed to the test
            box["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    return thread, box


def _until(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@pytest.mark.parametrize("workers", [1, 2])
def test_old_transaction_holds_the_batches(settings: Settings, database_url: str,
                                           workers: int,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    with connect_raw(database_url) as conn:
        fill(conn, rows=2000)
    seen: list[Event] = []
    bf = Backfill(name="held", table="items", set={"n": "n + 1"}, batch_size=200,
                  max_batch_size=200, options={"max_transaction_age": "1s",
                                               "health_interval": "100ms"})
    with connect_raw(database_url, application_name="report-job") as old:
        old.execute("BEGIN")
        old.execute("SELECT txid_current()")
        time.sleep(1.2)  # older than the limit before the backfill starts
        thread, box = _in_thread(lambda: run_backfill(settings, bf, workers=workers,
                                                      on_event=seen.append))
        _until(lambda: any(p.data["held"] for p in seen), 10, "no held progress")
        held = next(p.data["held"] for p in seen if p.data["held"])
        pid = old.info.backend_pid
        assert held is not None and f"transaction of pid {pid} (report-job) open for" in held
        assert backfill_status(settings, "held")[0].held == held
        assert main(["--database-url", database_url, "backfill", "status", "held"]) == 0
        assert f"batches held: {held}" in capsys.readouterr().out
        time.sleep(0.5)
        assert scalar(database_url, "SELECT count(*) FROM items WHERE n = 1") == 0
        assert thread.is_alive()
        old.execute("COMMIT")
    thread.join(30)
    assert "error" not in box, box
    assert box["result"].status == "done" and box["result"].rows == 2000
    assert seen[-1].data["held"] is None
    assert backfill_status(settings, "held")[0].held is None


@pytest.fixture
def fast_autovacuum(server_url: str) -> Iterator[None]:
    """Autovacuum on, looking every second (server-wide; reset afterwards)."""
    with connect_raw(server_url) as conn:
        before = conn.execute("SHOW autovacuum").fetchone()
        conn.execute("ALTER SYSTEM SET autovacuum = on")
        conn.execute("ALTER SYSTEM SET autovacuum_naptime = '1s'")
        conn.execute("SELECT pg_reload_conf()")
    try:
        yield
    finally:
        with connect_raw(server_url) as conn:
            conn.execute("ALTER SYSTEM RESET autovacuum_naptime")
            if before and before[0] == "off":
                conn.execute("ALTER SYSTEM SET autovacuum = off")
            else:
                conn.execute("ALTER SYSTEM RESET autovacuum")
            conn.execute("SELECT pg_reload_conf()")


def _autovacuum_pid(conn: psycopg.Connection) -> int | None:
    row = conn.execute("""SELECT p.pid FROM pg_stat_progress_vacuum p
                          JOIN pg_stat_activity a ON a.pid = p.pid
                          WHERE p.relid = 'items'::regclass
                            AND a.backend_type = 'autovacuum worker'""").fetchone()
    return None if row is None else int(row[0])


def test_autovacuum_on_the_table_holds_the_batches(settings: Settings, database_url: str,
                                                   fast_autovacuum: None) -> None:
    with connect_raw(database_url) as conn:
        fill(conn, rows=20_000)
        # autovacuum the table at once, and slowly: it sleeps 100 ms per page or so
        conn.execute("""ALTER TABLE items SET (autovacuum_vacuum_threshold = 0,
                        autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_cost_delay = 100,
                        autovacuum_vacuum_cost_limit = 1)""")
        conn.execute("UPDATE items SET hits = 1")  # 20,000 dead rows
        _until(lambda: _autovacuum_pid(conn) is not None, 30, "autovacuum did not start")
    seen: list[Event] = []
    bf = Backfill(name="vac", table="items", set={"n": "n + 1"}, batch_size=500,
                  options={"hold_during_autovacuum": True, "health_interval": "100ms"})
    thread, box = _in_thread(lambda: run_backfill(settings, bf, on_event=seen.append))
    _until(lambda: any(p.data["held"] for p in seen), 10, "no held progress")
    assert next(p.data["held"] for p in seen if p.data["held"]) == "autovacuum runs on the table"
    assert scalar(database_url, "SELECT count(*) FROM items WHERE n = 1") == 0
    with connect_raw(database_url) as conn:
        # no more autovacuum on the table; the running one is cancelled
        conn.execute("ALTER TABLE items SET (autovacuum_enabled = false)")
        pid = _autovacuum_pid(conn)
        if pid is not None:
            conn.execute("SELECT pg_cancel_backend(%s)", (pid,))
    thread.join(60)
    assert "error" not in box, box
    assert box["result"].rows == 20_000 and seen[-1].data["held"] is None


def test_replica_lag_reads_on_a_primary_without_standbys(settings: Settings,
                                                         database_url: str) -> None:
    with connect_raw(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM pg_stat_replication").fetchone() == (0,)
        assert health.replica_lag(conn) is None
        fill(conn, rows=300)
    seen: list[Event] = []
    bf = Backfill(name="lag", table="items", set={"n": "n + 1"},
                  options={"max_replica_lag": "1ms", "health_interval": "10ms"})
    result = run_backfill(settings, bf, on_event=seen.append)
    assert result.rows == 300 and not any(p.data["held"] for p in seen)


def test_health_settings_are_checked(settings: Settings) -> None:
    bf = Backfill(name="x", table="t", set={"n": "1"})
    section = {"backfill": {"max_replica_lag": "10s", "max_transaction_age": "off",
                            "hold_during_autovacuum": True}}
    options = resolve(settings.with_overrides(sections=section), bf)
    assert options.max_replica_lag == 10.0 and options.max_transaction_age is None
    assert options.hold_during_autovacuum is True
    default = resolve(settings, bf)
    assert default.max_replica_lag == 30.0 and default.max_transaction_age == 600.0
    assert default.hold_during_autovacuum is False
    for bad in ({"hold_during_autovacuum": "yes"}, {"max_replica_lag": "soon"},
                {"health_interval": "off"}):
        with pytest.raises(SettingsError, match=r"backfill\."):
            resolve(settings.with_overrides(sections={"backfill": bad}), bf)
