"""SQL and Python backfills: every row once, one write-back statement per batch,
composite keys, dry run, state, pause/resume/cancel, lock-timeout retries."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from tests.backfill.conftest import fill, scalar
from umbau.backfill import (
    Backfill,
    backfill_status,
    cancel,
    dry_run,
    pause,
    resume,
    run_backfill,
)
from umbau.errors import BackfillError
from umbau.postgres.connect import normalize_url
from umbau.postgres.driver import connect_raw
from umbau.settings import Settings


def test_sql_backfill_changes_every_row_exactly_once(settings: Settings,
                                                     database_url: str) -> None:
    with connect_raw(database_url) as conn:
        fill(conn, rows=12_000)
    bf = Backfill(name="upper", table="items", set={"v": "upper(v)", "n": "n + 1"},
                  verify="n = 1 AND v = upper(v)", batch_size=500)
    seen = []
    result = run_backfill(settings, bf, on_event=seen.append)
    assert result.status == "done" and result.rows == 12_000
    assert result.verification is not None and result.verification.ok
    assert scalar(database_url, "SELECT count(*) FROM items WHERE n <> 1") == 0
    assert seen and seen[-1].done == 12_000 and seen[-1].total == 12_000
    state = backfill_status(settings, "upper")[0]
    assert state.status == "done" and state.rows_done == 12_000 and state.finished_at
    again = run_backfill(settings, bf)
    assert again.already_done and again.rows == 0
    assert scalar(database_url, "SELECT max(n) FROM items") == 1


def test_where_limits_the_rows_and_batches_adapt(settings: Settings, database_url: str) -> None:
    with connect_raw(database_url) as conn:
        fill(conn, rows=6000)
    bf = Backfill(name="odd", table="items", set={"n": "n + 1"}, where="id % 2 = 1",
                  batch_size=100, min_batch_size=100, max_batch_size=4000,
                  target_duration="500ms")
    result = run_backfill(settings, bf)
    assert result.rows == 3000
    assert scalar(database_url, "SELECT count(*) FROM items WHERE n = 1") == 3000
    assert scalar(database_url, "SELECT count(*) FROM items WHERE n = 1 AND id % 2 = 0") == 0
    # fast batches grew: far fewer than 6000 / 100 batches
    batches = scalar(database_url, "SELECT sum(batches) FROM umbau_backfill_chunks")
    assert batches is not None and int(batches) < 30


def _reshape(rows: list[dict]) -> list[dict]:
    return [{"id": r["id"], "n": r["n"] + 1,
             "payload": {"version": "1.0", "text": r["payload"]["content"],
                         "confidence": r["payload"]["score"]}} for r in rows]


def test_python_transform_writes_back_one_statement_per_batch(settings: Settings,
                                                              database_url: str) -> None:
    with connect_raw(database_url) as conn:
        fill(conn, rows=5000)
        # A statement-level trigger counts the UPDATE statements against the table.
        conn.execute("""CREATE TABLE stmts (n int);  INSERT INTO stmts VALUES (0);
            CREATE FUNCTION count_stmt() RETURNS trigger LANGUAGE plpgsql AS
              $$ BEGIN UPDATE stmts SET n = n + 1; RETURN NULL; END $$;
            CREATE TRIGGER count_stmt AFTER UPDATE ON items
              FOR EACH STATEMENT EXECUTE FUNCTION count_stmt();""")
    bf = Backfill(name="ocr", table="items", transform=_reshape, columns=["n", "payload"],
                  verify="n = 1 AND payload->>'version' = '1.0'", batch_size=1000,
                  max_batch_size=1000)
    result = run_backfill(settings, bf)
    assert result.rows == 5000 and result.verification and result.verification.ok
    # 5 batches of 1000 rows, one UPDATE each (a final empty batch writes nothing)
    assert scalar(database_url, "SELECT n FROM stmts") == 5
    assert scalar(database_url,
                  "SELECT payload->>'text' FROM items WHERE id = 42") == "text 42"


def test_composite_text_key(settings: Settings, database_url: str) -> None:
    with connect_raw(database_url) as conn:
        conn.execute("""CREATE TABLE pairs (shop text, ext uuid, n int NOT NULL DEFAULT 0,
                        PRIMARY KEY (shop, ext))""")
        conn.execute("""INSERT INTO pairs (shop, ext) SELECT 'shop-' || (g % 7),
                        md5(g::text)::uuid FROM generate_series(1, 3000) g""")
    bf = Backfill(name="pairs", table="pairs", set={"n": "n + 1"}, verify="n = 1",
                  batch_size=100, max_batch_size=100, chunks=3)
    result = run_backfill(settings, bf, workers=1)
    assert result.rows == 3000 and result.verification and result.verification.ok
    assert len(backfill_status(settings, "pairs")[0].chunks) == 3


def test_dry_run_counts_and_changes_nothing(settings: Settings, database_url: str) -> None:
    with connect_raw(database_url) as conn:
        fill(conn, rows=4000)
    bf = Backfill(name="dry", table="items", set={"n": "n + 1"}, where="id <= 3000",
                  batch_size=1000)
    result = dry_run(settings, bf)
    assert result.rows == 3000 and result.sample_rows == 1000
    assert result.estimate_s is not None and result.estimate_s > 0
    assert scalar(database_url, "SELECT max(n) FROM items") == 0
    assert scalar(database_url, "SELECT to_regclass('umbau_backfills')") is None


def test_pause_resume_cancel(settings: Settings, database_url: str) -> None:
    with connect_raw(database_url) as conn:
        fill(conn, rows=3000)
    calls = []

    def pausing(rows: list[dict]) -> list[dict]:
        calls.append(len(rows))
        if len(calls) == 2:
            pause(settings, "p")  # takes effect before the next batch
        return [{"id": r["id"], "n": r["n"] + 1} for r in rows]

    bf = Backfill(name="p", table="items", transform=pausing, columns=["n"], batch_size=500,
                  max_batch_size=500)
    first = run_backfill(settings, bf)
    assert first.status == "paused" and first.rows == 1000
    with pytest.raises(BackfillError, match="paused"):
        run_backfill(settings, bf)
    assert resume(settings, "p") == "running"
    second = run_backfill(settings, bf)
    assert second.status == "done" and second.rows == 2000
    assert scalar(database_url, "SELECT count(*) FROM items WHERE n <> 1") == 0
    with pytest.raises(BackfillError, match="cannot become cancelled"):
        cancel(settings, "p")
    with pytest.raises(BackfillError, match="no backfill named"):
        pause(settings, "nope")


def test_cancel_stops_and_restart_starts_over(settings: Settings, database_url: str) -> None:
    with connect_raw(database_url) as conn:
        fill(conn, rows=2000)

    def cancelling(rows: list[dict]) -> list[dict]:
        cancel(settings, "c")
        return [{"id": r["id"], "n": r["n"] + 1} for r in rows]

    bf = Backfill(name="c", table="items", transform=cancelling, columns=["n"],
                  batch_size=500, max_batch_size=500)
    assert run_backfill(settings, bf).status == "cancelled"
    with pytest.raises(BackfillError, match="cancelled"):
        run_backfill(settings, bf)
    assert scalar(database_url, "SELECT count(*) FROM items WHERE n = 1") == 500


def test_lock_timeout_is_retried(settings: Settings, database_url: str) -> None:
    with connect_raw(database_url) as conn:
        fill(conn, rows=3000)
    fast = settings.with_overrides(lock_timeout=0.1, retries=30)
    holder = psycopg.connect(str(normalize_url(database_url).set(drivername="postgresql")
                                 .render_as_string(hide_password=False)), autocommit=True)
    holder.execute("BEGIN")
    holder.execute("SELECT * FROM items WHERE id = 1500 FOR UPDATE")
    release = threading.Timer(0.8, lambda: (holder.execute("COMMIT"), holder.close()))
    release.start()
    try:
        started = time.monotonic()
        result = run_backfill(fast, Backfill(name="locked", table="items", set={"n": "n + 1"},
                                             batch_size=500, max_batch_size=500))
    finally:
        release.join()
    assert result.retries >= 1 and result.rows == 3000
    assert time.monotonic() - started >= 0.7
    assert scalar(database_url, "SELECT count(*) FROM items WHERE n <> 1") == 0


def test_python_write_back_round_trips_json_strings_and_mixed_numbers(
        settings: Settings, database_url: str) -> None:
    with connect_raw(database_url) as conn:
        conn.execute("""CREATE TABLE docs (id int PRIMARY KEY, doc jsonb, score numeric,
                        n int NOT NULL DEFAULT 0)""")
        conn.execute("""INSERT INTO docs (id, doc) SELECT g, CASE WHEN g % 2 = 0
                        THEN to_jsonb('text ' || g) ELSE jsonb_build_object('k', g) END
                        FROM generate_series(1, 400) g""")

    def bump(rows: list[dict]) -> list[dict]:
        # doc as read (a JSON string for even ids); score 1 or 1.5: an int and a float
        return [{"id": r["id"], "doc": r["doc"], "score": 1 if r["id"] % 2 else 1.5,
                 "n": r["n"] + 1} for r in rows]

    result = run_backfill(settings, Backfill(name="docs", table="docs", transform=bump,
                                             columns=["doc", "n"], batch_size=100))
    assert result.rows == 400
    assert scalar(database_url, "SELECT doc FROM docs WHERE id = 4") == "text 4"
    assert scalar(database_url, "SELECT doc->>'k' FROM docs WHERE id = 5") == "5"
    assert scalar(database_url, "SELECT sum(score) FROM docs") == 500
    assert scalar(database_url, "SELECT count(*) FROM docs WHERE n <> 1") == 0


def test_paused_worker_frees_its_chunk(settings: Settings, database_url: str) -> None:
    with connect_raw(database_url) as conn:
        fill(conn, rows=1000)

    def pausing(rows: list[dict]) -> list[dict]:
        pause(settings, "free")
        return [{"id": r["id"], "n": r["n"] + 1} for r in rows]

    bf = Backfill(name="free", table="items", transform=pausing, columns=["n"],
                  batch_size=200, max_batch_size=200)
    with connect_raw(database_url) as conn:  # a session that outlives the run, as in a revision
        assert run_backfill(settings, bf, connection=conn).status == "paused"
        assert scalar(database_url, "SELECT count(*) FROM umbau_backfill_chunks "
                                    "WHERE owner IS NOT NULL OR lease_expires IS NOT NULL") == 0


def test_dry_run_estimate_covers_every_key_not_only_the_where(settings: Settings,
                                                              database_url: str) -> None:
    with connect_raw(database_url) as conn:
        fill(conn, rows=4000)
    result = dry_run(settings, Backfill(name="few", table="items", set={"n": "n + 1"},
                                        where="id <= 10", batch_size=1000))
    assert result.rows == 10 and result.sample_rows == 10
    # the run pages through all 4000 keys: about 4 batches like the sample, not 10/1000 of one
    assert result.estimate_s == pytest.approx(4 * result.sample_s)


def test_checkpoints_survive_sessions_with_another_datestyle(settings: Settings,
                                                             database_url: str) -> None:
    """A timestamp key written as text by one session and read back by another."""
    with connect_raw(database_url) as conn:
        conn.execute("""CREATE TABLE events (at timestamp PRIMARY KEY, n int NOT NULL DEFAULT 0)""")
        conn.execute("""INSERT INTO events (at) SELECT '2024-01-01'::timestamp + g * interval '1h'
                        FROM generate_series(0, 299) g""")
        dbname = conn.execute("SELECT current_database()").fetchone()[0]
        conn.execute(f'ALTER DATABASE "{dbname}" SET DateStyle = \'SQL, MDY\'')
    calls: list[int] = []

    def once(rows: list[dict]) -> list[dict]:
        calls.append(1)
        if len(calls) == 2:
            pause(settings, "events")
        return [{"at": r["at"], "n": r["n"] + 1} for r in rows]

    bf = Backfill(name="events", table="events", transform=once, columns=["n"], batch_size=100,
                  max_batch_size=100)
    assert run_backfill(settings, bf).status == "paused"
    with connect_raw(database_url) as conn:
        conn.execute(f'ALTER DATABASE "{dbname}" SET DateStyle = \'SQL, DMY\'')
    resume(settings, "events")
    assert run_backfill(settings, bf).status == "done"
    assert scalar(database_url, "SELECT count(*) FROM events WHERE n <> 1") == 0
