"""Table names in SQL identifier syntax: bad syntax and wrong case are one-line errors
that leave the database as it was (issue 11, items 8 and 15)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.backfill.conftest import recorded, scalar
from umbau.backfill import Backfill, run_backfill
from umbau.cli import main
from umbau.errors import EXIT_USAGE, UsageError
from umbau.postgres.driver import connect_raw
from umbau.settings import Settings


@pytest.mark.parametrize("name", ["a.b.c.d", 'orders"', '"orders', "app..orders", "",
                                  "app.orders.x", 'a"b'])
def test_invalid_table_syntax_is_one_line(settings: Settings, database_url: str,
                                          name: str) -> None:
    with pytest.raises(UsageError) as info:
        run_backfill(settings, Backfill(name="bad", table=name, set={"n": "1"}))
    message = str(info.value)
    assert "\n" not in message and "schema.table" in message
    assert recorded(database_url) == 0
    assert scalar(database_url, "SELECT to_regclass('umbau_backfills')") is None


def _quoted_tables(url: str) -> None:
    with connect_raw(url) as conn:
        conn.execute('CREATE SCHEMA app')
        for table in ('"Orders"', 'app."Orders"'):
            conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, n int NOT NULL DEFAULT 0)")
            conn.execute(f"INSERT INTO {table} (id) SELECT generate_series(1, 50)")


@pytest.mark.parametrize(("given", "suggested"), [
    ("orders", '"Orders"'), ("ORDERS", '"Orders"'), ("app.orders", 'app."Orders"'),
    ("APP.orders", 'app."Orders"'),
])
def test_wrong_case_suggests_the_quoted_name(settings: Settings, database_url: str,
                                             given: str, suggested: str) -> None:
    _quoted_tables(database_url)
    with pytest.raises(UsageError, match=f"did you mean '{suggested}'") as info:
        run_backfill(settings, Backfill(name="case", table=given, set={"n": "n + 1"}))
    assert "\n" not in str(info.value)
    assert recorded(database_url) == 0


@pytest.mark.parametrize("given", ['"Orders"', 'app."Orders"', '"app"."Orders"'])
def test_quoted_names_are_found(settings: Settings, database_url: str, given: str) -> None:
    _quoted_tables(database_url)
    result = run_backfill(settings, Backfill(name="quoted", table=given, set={"n": "n + 1"}))
    assert result.status == "done" and result.rows == 50
    schema = "app" if "app" in given else "public"
    assert scalar(database_url, f'SELECT sum(n) FROM {schema}."Orders"') == 50


def test_missing_table_without_a_near_name(settings: Settings, database_url: str) -> None:
    with pytest.raises(UsageError, match="table 'nope' does not exist: check") as info:
        run_backfill(settings, Backfill(name="none", table="nope", set={"n": "1"}))
    assert "did you mean" not in str(info.value)


def test_cli_exit_code_for_bad_names(database_url: str, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    _quoted_tables(database_url)
    (tmp_path / "bf_names.py").write_text(
        "from umbau.backfill import Backfill\n"
        "dots = Backfill(name='dots', table='a.b.c.d', set={'n': '1'})\n"
        "quote = Backfill(name='quote', table='\"Orders', set={'n': '1'})\n"
        "case = Backfill(name='case', table='Orders', set={'n': '1'})\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    for spec, expected in (("dots", "has 4 parts"), ("quote", "not a valid SQL name"),
                           ("case", "did you mean '\"Orders\"'")):
        assert main(["--database-url", database_url, "backfill", "run", f"bf_names:{spec}"]) \
            == EXIT_USAGE
        err = capsys.readouterr().err
        assert expected in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1, err
