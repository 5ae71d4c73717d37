"""The dashboard's JSON API and page with Starlette's test client, on a real database."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from umbau.backfill import Backfill, run_backfill
from umbau.commands.info import history
from umbau.commands.status import status
from umbau.dashboard.app import create_app
from umbau.dashboard.data import Sources
from umbau.dashboard.serve import DashboardOptions, check_bind
from umbau.errors import UsageError
from umbau.postgres.connect import connect
from umbau.settings import Settings

pytestmark = pytest.mark.db

TOKEN = "s3cret-token-of-24-chars"


def test_api_answers_are_the_commands_own_results(etsy_settings: Settings) -> None:
    client = TestClient(create_app(etsy_settings))
    assert client.get("/api/status").json() == status(etsy_settings).as_dict()
    runs = history(etsy_settings, runs=True).as_dict()["runs"]
    page = client.get("/api/history").json()
    assert page["runs"] == runs[:50]
    assert page["total"] == len(runs) and page["page"] == 1


def test_pending_revisions_are_linted_with_their_rewrites(etsy_settings: Settings) -> None:
    answer = TestClient(create_app(etsy_settings)).get("/api/lint").json()
    assert "error" not in answer
    pending = status(etsy_settings).as_dict()["pending"]
    assert pending and answer["units"]
    assert {f["revision"] for f in answer["findings"]} <= {p["revision"] for p in pending}
    assert all(f["safe_rewrite"] for f in answer["findings"])


def test_history_pages(etsy_settings: Settings) -> None:
    with connect(etsy_settings.require_database_url()) as conn:
        conn.execute(text("INSERT INTO umbau_history (revision, direction, started_at, "
                          "finished_at, duration_ms, attempts, outcome, umbau_version, "
                          "db_user) SELECT 'r' || g, 'upgrade', now(), now(), g, 1, "
                          "'success', 'x', 'u' FROM generate_series(1, 120) g"))
        conn.commit()
    client = TestClient(create_app(etsy_settings))
    first = client.get("/api/history?per_page=50").json()
    third = client.get("/api/history?page=3&per_page=50").json()
    assert first["pages"] == 3 and len(first["runs"]) == 50
    assert len(third["runs"]) == first["total"] - 100
    assert first["runs"][0]["revision"] == "r120"
    huge = client.get("/api/history?per_page=100000").json()
    assert huge["per_page"] == 500
    assert client.get("/api/history?page=abc").json()["page"] == 1


def test_backfills_show_rate_and_eta_between_polls(etsy_settings: Settings) -> None:
    url = etsy_settings.require_database_url()
    with connect(url) as conn:
        conn.execute(text("CREATE TABLE nums (id int PRIMARY KEY, v int)"))
        conn.execute(text("INSERT INTO nums SELECT g, 0 FROM generate_series(1, 500) g"))
        conn.commit()
    run_backfill(etsy_settings, Backfill(name="bump", table="nums", set={"v": "v + 1"}))
    ticks = iter([0.0, 10.0])
    sources = Sources(etsy_settings, clock=lambda: next(ticks))
    first = sources.backfills()["backfills"][0]
    assert first["name"] == "bump" and first["status"] == "done"
    assert first["rows_done"] == 500 and first["rate_rows_per_s"] is None
    second = sources.backfills()["backfills"][0]
    assert second["rate_rows_per_s"] == 0.0 and second["eta_s"] is None


def test_a_source_that_fails_answers_an_error_not_a_500(etsy_settings: Settings) -> None:
    broken = etsy_settings.with_overrides(database_url="postgresql://u:pw123@127.0.0.1:1/x")
    client = TestClient(create_app(broken))
    answer = client.get("/api/status")
    assert answer.status_code == 200
    error = answer.json()["error"]
    assert error["type"] == "DatabaseUnreachable" and error["exit_code"] == 5
    assert "pw123" not in answer.text
    assert client.get("/api/history").json()["error"]["exit_code"] == 5


def test_not_yet_available_sections_say_so(etsy_settings: Settings) -> None:
    client = TestClient(create_app(etsy_settings))
    # umbau release exists now: no run recorded yet (the table is not even created)
    assert client.get("/api/releases").json() == {"available": True, "runs": [],
                                                  "steps": [], "lock_holder": None}
    fleet = client.get("/api/fleet").json()
    assert fleet.get("available") is False or fleet.get("configured") is False
    assert client.get("/api/backups").json()["backups"] == []


def test_the_page_is_served_read_only(etsy_settings: Settings) -> None:
    client = TestClient(create_app(etsy_settings))
    page = client.get("/")
    assert page.status_code == 200 and "<title>umbau dashboard</title>" in page.text
    assert client.post("/api/status").status_code == 405
    assert client.delete("/").status_code == 405


def test_a_token_is_required_and_compared(etsy_settings: Settings) -> None:
    client = TestClient(create_app(etsy_settings, token=TOKEN))
    assert client.get("/api/status").status_code == 401
    assert client.get("/api/status", headers={"Authorization": "Bearer wrong"}).status_code == 401
    ok = client.get("/api/status", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200 and "state" in ok.json()
    page = client.get(f"/?token={TOKEN}")
    assert page.status_code == 200
    assert client.get("/api/status").status_code == 200  # the cookie set by ?token=


@pytest.mark.parametrize(("host", "token", "message"), [
    ("0.0.0.0", None, "beyond this machine"),
    ("192.0.2.7", None, "beyond this machine"),
    ("127.0.0.1", "short", "shorter than 16"),
])
def test_binding_beyond_loopback_needs_a_token(host: str, token: str | None,
                                               message: str) -> None:
    with pytest.raises(UsageError, match=message):
        check_bind(DashboardOptions(host=host, token=token))


def test_loopback_binds_need_no_token() -> None:
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.5"):
        check_bind(DashboardOptions(host=host))
    check_bind(DashboardOptions(host="0.0.0.0", token=TOKEN))
