"""Bad input: no usable key, a transform that raises, a failing verification, a changed
definition; each refuses with a one-line error and its exit code."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.backfill.conftest import fill, recorded, scalar
from umbau.backfill import Backfill, backfill_status, dry_run, run_backfill
from umbau.cli import main
from umbau.errors import (
    EXIT_BACKFILL,
    EXIT_VERIFICATION,
    BackfillDefinitionChanged,
    BackfillError,
    BackfillFailed,
    NoUsableKey,
    UsageError,
    VerificationFailed,
)
from umbau.postgres.driver import connect_raw
from umbau.settings import Settings


def test_table_without_primary_key_is_refused(settings: Settings, database_url: str) -> None:
    with connect_raw(database_url) as conn:
        conn.execute("CREATE TABLE loose (id int, v text)")
        conn.execute("CREATE INDEX ON loose (id)")
        conn.execute("CREATE UNIQUE INDEX ON loose (v)")  # unique but nullable
    with pytest.raises(NoUsableKey, match="no primary key"):
        run_backfill(settings, Backfill(name="a", table="loose", set={"v": "v"}))
    with pytest.raises(NoUsableKey, match="not a unique, NOT NULL"):
        run_backfill(settings, Backfill(name="b", table="loose", set={"v": "v"}, key=["id"]))
    with pytest.raises(NoUsableKey, match="not a unique, NOT NULL"):
        run_backfill(settings, Backfill(name="c", table="loose", set={"v": "v"}, key=["v"]))
    with pytest.raises(UsageError, match="does not exist"):
        run_backfill(settings, Backfill(name="d", table="nope", set={"v": "v"}))
    assert recorded(database_url) == 0


def test_unique_not_null_key_is_accepted(settings: Settings, database_url: str) -> None:
    with connect_raw(database_url) as conn:
        conn.execute("CREATE TABLE keyed (code text NOT NULL, n int DEFAULT 0)")
        conn.execute("CREATE UNIQUE INDEX ON keyed (code)")
        conn.execute("INSERT INTO keyed (code) SELECT 'c' || g FROM generate_series(1, 500) g")
    result = run_backfill(settings, Backfill(name="k", table="keyed", set={"n": "n + 1"},
                                             key=["code"], batch_size=100, max_batch_size=100))
    assert result.rows == 500


def test_invalid_declarations() -> None:
    with pytest.raises(UsageError, match="exactly one of"):
        Backfill(name="x", table="t")
    with pytest.raises(UsageError, match="exactly one of"):
        Backfill(name="x", table="t", set={"a": "1"}, transform=lambda rows: rows)
    with pytest.raises(UsageError, match="name"):
        Backfill(name="no spaces", table="t", set={"a": "1"})


FIXED = {"ok": False}


def _fragile(rows: list[dict]) -> list[dict]:
    """Raises on id 2345 until FIXED["ok"] is set."""
    out = []
    for r in rows:
        if r["id"] == 2345 and not FIXED["ok"]:
            raise ValueError("cannot convert payload of 2345")
        out.append({"id": r["id"], "n": r["n"] + 1})
    return out


def test_transform_that_raises_fails_and_resumes_once_fixed(settings: Settings,
                                                            database_url: str) -> None:
    with connect_raw(database_url) as conn:
        fill(conn, rows=5000)
    bf = Backfill(name="fragile", table="items", transform=_fragile, columns=["n"],
                  batch_size=500, max_batch_size=500, min_batch_size=500, verify="n = 1")
    FIXED["ok"] = False
    with pytest.raises(BackfillFailed, match=r"key range \(2000 .. 2500\].*2345") as info:
        run_backfill(settings, bf)
    assert info.value.key_range == "(2000 .. 2500]"
    # the failed batch rolled back; everything before it is done, nothing after it
    assert scalar(database_url, "SELECT count(*) FROM items WHERE n = 1") == 2000
    assert scalar(database_url, "SELECT max(id) FROM items WHERE n = 1") == 2000
    state = backfill_status(settings, "fragile")[0]
    assert state.status == "failed" and "cannot convert payload of 2345" in state.last_error
    assert state.last_error_range == "(2000 .. 2500]"
    with pytest.raises(BackfillFailed):  # still broken: fails again at the same place
        run_backfill(settings, bf)
    FIXED["ok"] = True
    result = run_backfill(settings, bf)
    assert result.status == "done" and result.rows == 3000
    assert result.verification is not None and result.verification.ok
    assert scalar(database_url, "SELECT count(*) FROM items WHERE n <> 1") == 0


def test_sql_error_fails_with_key_range(settings: Settings, database_url: str) -> None:
    with connect_raw(database_url) as conn:
        fill(conn, rows=1000)
    bf = Backfill(name="div", table="items", set={"n": "100 / (id - 700)"}, batch_size=200,
                  max_batch_size=200, min_batch_size=200)
    with pytest.raises(BackfillFailed, match=r"\(600 .. 800\].*division by zero"):
        run_backfill(settings, bf)


def test_failing_verification_reports_count_and_sample(settings: Settings,
                                                       database_url: str) -> None:
    with connect_raw(database_url) as conn:
        fill(conn, rows=2000)
    bf = Backfill(name="half", table="items", set={"n": "n + 1"}, where="id > 30",
                  verify="n = 1")
    with pytest.raises(VerificationFailed, match="30 row") as info:
        run_backfill(settings, bf)
    assert info.value.rows == 30
    assert info.value.sample[:3] == (("1",), ("2",), ("3",))
    state = backfill_status(settings, "half")[0]
    assert state.status == "failed" and state.verification["failing_rows"] == 30
    # fix the data; the rerun has no rows left to change and verifies again
    with connect_raw(database_url) as conn:
        conn.execute("UPDATE items SET n = 1 WHERE id <= 30")
    result = run_backfill(settings, bf)
    assert result.status == "done" and result.rows == 0 and result.verification.ok


def test_same_name_different_definition_is_refused(settings: Settings,
                                                   database_url: str) -> None:
    with connect_raw(database_url) as conn:
        fill(conn, rows=500)
    run_backfill(settings, Backfill(name="same", table="items", set={"n": "n + 1"}))
    with pytest.raises(BackfillDefinitionChanged, match="different definition"):
        run_backfill(settings, Backfill(name="same", table="items", set={"n": "n + 2"}))
    assert scalar(database_url, "SELECT max(n) FROM items") == 1
    again = run_backfill(settings, Backfill(name="same", table="items", set={"n": "n + 2"}),
                         restart=True)
    assert again.rows == 500 and scalar(database_url, "SELECT max(n) FROM items") == 3


def test_cli_exit_codes(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                        capsys: pytest.CaptureFixture[str]) -> None:
    with connect_raw(database_url) as conn:
        fill(conn, rows=300)
        conn.execute("CREATE TABLE loose (id int)")
    (tmp_path / "bf_bad.py").write_text(
        "from umbau.backfill import Backfill\n"
        "loose = Backfill(name='loose', table='loose', set={'id': 'id'})\n"
        "unverified = Backfill(name='unv', table='items', set={'n': 'n'}, verify='n = 1')\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    base = ["--database-url", database_url, "backfill", "run"]
    assert main([*base, "bf_bad:loose"]) == EXIT_BACKFILL
    assert "no primary key" in capsys.readouterr().err
    assert main([*base, "bf_bad:unverified"]) == EXIT_VERIFICATION
    err = capsys.readouterr().err
    assert "300 row(s) fail" in err and "keys 1; 2; 3" in err
    assert main([*base, "bf_bad:missing"]) == 2


@pytest.mark.parametrize(("fields", "what"), [
    ({"set": {"n": "n + "}}, "set= or where="),
    ({"set": {"n": "n + 1"}, "where": "no_such_column > 0"}, "set= or where="),
    ({"set": {"n": "'many'"}}, "set= or where="),  # not an integer: caught when planned
    ({"set": {"n": "n + 1"}, "verify": "n = = 1"}, "verify="),
    ({"transform": lambda rows: rows, "columns": ["n"], "where": "n"}, "where="),
])
def test_bad_sql_is_refused_before_any_row_changes(settings: Settings, database_url: str,
                                                   fields: dict, what: str) -> None:
    with connect_raw(database_url) as conn:
        fill(conn, rows=300)
    bf = Backfill(name="typo", table="items", **fields)
    for attempt in (run_backfill, dry_run):
        with pytest.raises(UsageError, match=f"{what} is not valid SQL on items") as info:
            attempt(settings, bf)
        assert "\n" not in str(info.value)
    assert scalar(database_url, "SELECT max(n) FROM items") == 0
    assert recorded(database_url) == 0


def test_dry_run_whose_sample_batch_fails(settings: Settings, database_url: str) -> None:
    with connect_raw(database_url) as conn:
        fill(conn, rows=300)
    with pytest.raises(BackfillError, match=r"sample batch in key range \(-inf .. 100\] failed "
                                            r"\(DivisionByZero: division by zero\)"):
        dry_run(settings, Backfill(name="div", table="items", set={"n": "1 / (id - 50)"},
                                   batch_size=100, min_batch_size=100))
    with pytest.raises(BackfillError, match=r"ValueError: no"):
        dry_run(settings, Backfill(name="py", table="items", transform=_refuse, columns=["n"]))
    assert scalar(database_url, "SELECT max(n) FROM items") == 0


def _refuse(rows: list[dict]) -> list[dict]:
    raise ValueError("no")
