"""statement_timeout and the failure budget (issue 11, item 6): the first count is one
line, a batch that times out is split down to min_batch_size and then fails naming its
key range, and --max-failed-batches retries failed batches up to a budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.backfill.conftest import fill, recorded, scalar
from umbau.backfill import Backfill, backfill_status, run_backfill
from umbau.cli import main
from umbau.errors import EXIT_BACKFILL, BackfillError, BackfillFailed, DatabaseError
from umbau.postgres.driver import connect_raw
from umbau.settings import Settings

# pg_sleep(s) returns void, which is not NULL: the expression is n + 1, after a pause.
SLOW_PER_ROW = "n + 1 + (pg_sleep(0.002) IS NULL)::int"
SLOW_ROW_777 = "n + 1 + (CASE WHEN id = 777 THEN pg_sleep(1) END IS NULL)::int - 1"


def test_statement_timeout_during_the_first_count_is_one_line(
        settings: Settings, database_url: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with connect_raw(database_url) as conn:
        fill(conn, rows=2000)
    slow = settings.with_overrides(statement_timeout=0.3)
    where = "(pg_sleep(0.001) IS NOT NULL)"  # 2 s for the count of 2000 rows
    with pytest.raises(BackfillError, match="counting the rows of items hit statement_timeout"
                       ) as info:
        run_backfill(slow, Backfill(name="slowcount", table="items", set={"n": "n + 1"},
                                    where=where))
    assert "\n" not in str(info.value) and "--statement-timeout" in str(info.value)
    assert recorded(database_url) == 0 and scalar(database_url, "SELECT max(n) FROM items") == 0
    (tmp_path / "bf_slow.py").write_text(
        "from umbau.backfill import Backfill\n"
        f"slow = Backfill(name='slow', table='items', set={{'n': 'n + 1'}}, where={where!r})\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    code = main(["--database-url", database_url, "--statement-timeout", "300ms", "backfill",
                 "run", "bf_slow:slow"])
    err = capsys.readouterr().err
    assert code == EXIT_BACKFILL and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


def test_a_batch_that_times_out_is_split_until_it_fits(settings: Settings,
                                                       database_url: str) -> None:
    with connect_raw(database_url) as conn:
        fill(conn, rows=1500)
    # 2 ms a row: 1000 rows take 2 s, over the 0.5 s limit; 125 rows take 0.25 s
    slow = settings.with_overrides(statement_timeout=0.5)
    result = run_backfill(slow, Backfill(name="split", table="items",
                                         set={"n": SLOW_PER_ROW}, verify="n = 1",
                                         batch_size=1000, min_batch_size=20))
    assert result.status == "done" and result.rows == 1500 and result.retries >= 2
    assert scalar(database_url, "SELECT count(*) FROM items WHERE n <> 1") == 0


def test_a_batch_that_times_out_at_the_floor_fails_naming_its_range(
        settings: Settings, database_url: str) -> None:
    with connect_raw(database_url) as conn:
        fill(conn, rows=1500)
    slow = settings.with_overrides(statement_timeout=0.4)
    bf = Backfill(name="stuck", table="items", set={"n": SLOW_ROW_777}, batch_size=400,
                  min_batch_size=25, max_batch_size=400)
    with pytest.raises(BackfillFailed, match="statement_timeout on a batch of 25 row") as info:
        run_backfill(slow, bf)
    low, high = (int(k) for k in info.value.key_range.strip("(]").split(" .. "))
    assert low < 777 <= high and high - low == 25
    # every row below the failed range is done, none of it or above
    assert scalar(database_url, "SELECT max(id) FROM items WHERE n = 1") == low
    assert scalar(database_url, "SELECT count(*) FROM items WHERE n = 1") == low
    state = backfill_status(settings, "stuck")[0]
    assert state.status == "failed" and state.last_error_range == info.value.key_range


FLAKY = {"left": 0}


def _flaky(rows: list[dict]) -> list[dict]:
    """Raises while FLAKY["left"] > 0, once per call: a transient fault."""
    if FLAKY["left"] > 0:
        FLAKY["left"] -= 1
        raise RuntimeError("upstream service unavailable")
    return [{"id": r["id"], "n": r["n"] + 1} for r in rows]


def test_failure_budget(settings: Settings, database_url: str) -> None:
    with connect_raw(database_url) as conn:
        fill(conn, rows=1000)
    bf = Backfill(name="flaky", table="items", transform=_flaky, columns=["n"],
                  batch_size=200, max_batch_size=200, verify="n = 1")
    FLAKY["left"] = 3
    with pytest.raises(BackfillFailed, match=r"\(2 failed batches, budget 1\)"):
        run_backfill(settings, bf, max_failed_batches=1)
    assert scalar(database_url, "SELECT count(*) FROM items WHERE n > 1") == 0
    FLAKY["left"] = 3
    result = run_backfill(settings, bf, max_failed_batches=3)  # the budget counts anew
    assert result.status == "done" and FLAKY["left"] == 0
    assert scalar(database_url, "SELECT count(*) FROM items WHERE n <> 1") == 0
    assert backfill_status(settings, "flaky")[0].failed_batches == 3


def test_no_budget_by_default(settings: Settings, database_url: str) -> None:
    with connect_raw(database_url) as conn:
        fill(conn, rows=300)
    FLAKY["left"] = 1
    with pytest.raises(BackfillFailed, match="upstream service unavailable"):
        run_backfill(settings, Backfill(name="strict", table="items", transform=_flaky,
                                        columns=["n"]))


def test_a_lost_connection_is_one_line_and_resumable(settings: Settings,
                                                     database_url: str) -> None:
    """psycopg's errors become umbau's in one place (postgres/driver.py): a worker whose
    session is terminated stops with a DatabaseError, and a rerun resumes."""
    with connect_raw(database_url) as conn:
        fill(conn, rows=3000)
    bf = Backfill(name="cut", table="items", set={"n": "n + 1"}, verify="n = 1",
                  batch_size=100, max_batch_size=100, min_batch_size=100, pause=0.05)
    done: dict[str, BaseException] = {}

    def cut_when_started(progress: object) -> None:
        if "cut" not in done:
            done["cut"] = RuntimeError("terminated")
            with connect_raw(database_url) as other:
                other.execute("""SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                                 WHERE datname = current_database()
                                   AND pid <> pg_backend_pid()
                                   AND backend_type = 'client backend'""")

    with pytest.raises(DatabaseError, match=r"lost the database connection during backfill "
                                            r"cut .*rerun to resume") as info:
        run_backfill(settings, bf, on_event=cut_when_started)
    assert "\n" not in str(info.value)
    result = run_backfill(settings, bf)
    assert result.status == "done"
    assert scalar(database_url, "SELECT count(*) FROM items WHERE n <> 1") == 0
