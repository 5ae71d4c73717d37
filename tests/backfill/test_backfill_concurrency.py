"""Parallel workers, a concurrent writer, and kill -9 of the real CLI."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.backfill.conftest import fill, scalar
from umbau.backfill import Backfill, backfill_status, run_backfill
from umbau.postgres.driver import connect_raw
from umbau.settings import Settings

CHECKSUM = "SELECT md5(string_agg(t::text, '|' ORDER BY id)) FROM {} t"


def test_four_workers_cover_every_row_once(settings: Settings, database_url: str) -> None:
    with connect_raw(database_url) as conn:
        fill(conn, rows=40_000)
    bf = Backfill(name="par", table="items", set={"n": "n + 1", "v": "md5(v)"},
                  verify="n = 1", batch_size=500, max_batch_size=2000)
    result = run_backfill(settings, bf, workers=4)
    assert result.status == "done" and result.rows == 40_000 and result.workers == 4
    assert scalar(database_url, "SELECT count(*) FROM items WHERE n <> 1") == 0
    state = backfill_status(settings, "par")[0]
    assert len(state.chunks) == 16 and state.chunks_done == 16
    # the chunks were shared: more than one worker session claimed chunks
    owners = scalar(database_url, "SELECT count(*) FROM umbau_backfill_chunks WHERE claims > 0")
    assert owners == 16


def _keep_writing(url: str, stop: threading.Event, expected: dict[int, int],
                  rows: int) -> None:
    rng = random.Random(7)
    with connect_raw(url) as conn:
        while not stop.is_set():
            key = rng.randint(1, rows)
            conn.execute("UPDATE items SET hits = hits + 1 WHERE id = %s", (key,))
            expected[key] = expected.get(key, 0) + 1


def _read_modify_write(rows: list[dict]) -> list[dict]:
    """Writes back ``hits`` as it read it: an update in between would be lost without
    the batch's row locks."""
    time.sleep(0.01)
    return [{"id": r["id"], "hits": r["hits"], "n": r["n"] + 1,
             "payload": {**r["payload"], "version": 2}} for r in rows]


@pytest.mark.parametrize("kind", ["python", "sql"])
def test_concurrent_writer_loses_no_update(settings: Settings, database_url: str,
                                           kind: str) -> None:
    rows = 3000
    with connect_raw(database_url) as conn:
        fill(conn, rows=rows)
    if kind == "python":
        bf = Backfill(name="rmw", table="items", transform=_read_modify_write,
                      columns=["hits", "n", "payload"], batch_size=50, max_batch_size=50)
    else:
        bf = Backfill(name="rmw", table="items", batch_size=50, max_batch_size=50,
                      set={"hits": "hits", "n": "n + 1",
                           "payload": "payload || '{\"version\": 2}'"}, pause=0.005)
    expected: dict[int, int] = {}
    stop = threading.Event()
    writer = threading.Thread(target=_keep_writing, args=(database_url, stop, expected, rows))
    writer.start()
    try:
        result = run_backfill(settings, bf)
    finally:
        stop.set()
        writer.join()
    assert result.rows == rows and sum(expected.values()) > 200
    with connect_raw(database_url) as conn:
        got = dict(conn.execute("SELECT id, hits FROM items WHERE hits > 0").fetchall())
        assert conn.execute("SELECT count(*) FROM items WHERE n <> 1").fetchone()[0] == 0
    assert got == expected


DEFS = '''
from umbau.backfill import Backfill

rehash = Backfill(name="{name}", table="{table}",
                  set={{"n": "n + 1", "v": "md5(v || id::text)"}}, verify="n = 1",
                  batch_size=200, max_batch_size=200, pause=0.08)
'''


def _cli(tmp_path: Path, database_url: str, workers: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "UMBAU_DATABASE_URL": database_url, "UMBAU_LOCK_TIMEOUT": "1s"}
    return subprocess.Popen(
        [sys.executable, "-m", "umbau", "backfill", "run", "bf_kill:rehash", "--quiet",
         "--workers", str(workers)], cwd=tmp_path, env=env, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_kill_9_five_times_then_resume(settings: Settings, database_url: str,
                                       tmp_path: Path) -> None:
    rows = 20_000
    with connect_raw(database_url) as conn:
        fill(conn, "items", rows=rows)
        fill(conn, "reference", rows=rows)
    # the uninterrupted run, in-process, on an identical table
    run_backfill(settings, Backfill(name="reference", table="reference",
                                    set={"n": "n + 1", "v": "md5(v || id::text)"}))
    (tmp_path / "bf_kill.py").write_text(DEFS.format(name="rehash", table="items"))
    rng = random.Random(20261122)
    kills = 0
    for attempt in range(5):
        proc = _cli(tmp_path, database_url, workers=1 + attempt % 2)
        time.sleep(rng.uniform(0.8, 2.0))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its workers, mid-batch or not
            kills += 1
        proc.wait()
    assert kills >= 4
    done_before = scalar(database_url, "SELECT count(*) FROM items WHERE n = 1")
    assert 0 < done_before < rows  # it was interrupted half way
    proc = _cli(tmp_path, database_url, workers=1)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    assert scalar(database_url, "SELECT count(*) FROM items WHERE n <> 1") == 0
    assert scalar(database_url, CHECKSUM.format("items")) == scalar(
        database_url, CHECKSUM.format("reference"))
    state = backfill_status(settings, "rehash")[0]
    assert state.status == "done" and state.rows_done == rows
    assert sum(c.claims for c in state.chunks) > len(state.chunks)  # chunks were taken over
