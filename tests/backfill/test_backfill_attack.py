"""Faults found by attacking ``umbau backfill`` as a user would (real server, real
processes): an operator of another role, sessions terminated by the server, a spec whose
own code fails, a resume that cannot load its spec, a name that is not a table."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.backfill.conftest import fill, recorded, scalar
from umbau.backfill import backfill_status, pause
from umbau.cli import main
from umbau.errors import EXIT_BACKFILL, EXIT_BACKFILL_IN_USE, EXIT_DATABASE, EXIT_USAGE
from umbau.postgres.connect import normalize_url
from umbau.postgres.driver import connect_raw
from umbau.settings import Settings

ROWS = 20_000
DEFS = '''
from umbau.backfill import Backfill

slow = Backfill(name="slow", table="items", set={"n": "n + 1"}, verify="n = 1",
                batch_size=100, max_batch_size=100, min_batch_size=100, pause=0.05)
# one chunk: a second worker waits, polling, to take over
one = Backfill(name="slow", table="items", set={"n": "n + 1"}, verify="n = 1", chunks=1,
               batch_size=100, max_batch_size=100, min_batch_size=100, pause=0.05)
shared = Backfill(name="slow", table="items", set={"n": "n + 1"}, verify="n = 1", chunks=8,
                  batch_size=100, max_batch_size=100, min_batch_size=100, pause=0.05)
'''
# The progress query of the parent of --workers N (state.progress).
PROGRESS_SQL = "%coalesce(sum(c.rows_done), 0)%"


@pytest.fixture
def project(tmp_path: Path, database_url: str) -> Path:
    with connect_raw(database_url) as conn:
        fill(conn, rows=ROWS)
    (tmp_path / "bf_attack.py").write_text(DEFS)
    return tmp_path


def _start(project: Path, url: str, *args: str, spec: str = "bf_attack:slow",
           **settings: str) -> subprocess.Popen[str]:
    env = {**os.environ, "UMBAU_DATABASE_URL": url, "PYTHONPATH": str(project),
           **{f"UMBAU_{key.upper()}": value for key, value in settings.items()}}
    return subprocess.Popen(
        [sys.executable, "-m", "umbau", "backfill", "run", spec, "--quiet", *args],
        cwd=project, env=env, start_new_session=True, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)


def _changed(url: str) -> int:
    return int(scalar(url, "SELECT count(*) FROM items WHERE n = 1"))  # type: ignore[arg-type]


def _wait_for_rows(url: str, proc: subprocess.Popen[str], rows: int = 1000) -> None:
    deadline = time.monotonic() + 60
    while _changed(url) < rows:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the backfill did not start"
        time.sleep(0.1)


def _terminate(url: str, query_like: str = "%") -> int:
    """pg_terminate_backend of the other client sessions on the database whose current
    query matches; returns how many."""
    return int(scalar(url, """SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                              WHERE datname = current_database() AND pid <> pg_backend_pid()
                                AND backend_type = 'client backend' AND query LIKE %s""",
                      (query_like,)))  # type: ignore[arg-type]


def _exactly_once_after_rerun(project: Path, url: str) -> None:
    rerun = _start(project, url, "--workers", "2")
    _out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    assert scalar(url, "SELECT count(*) FROM items WHERE n <> 1") == 0


def test_restart_is_refused_for_an_operator_of_another_role(
        project: Path, database_url: str) -> None:
    """A role without pg_read_all_stats sees other roles' sessions without
    backend_start; the --restart guard took such a live worker for a dead one and
    reset the backfill under it (rows changed twice)."""
    role = f"umbau_op_{uuid.uuid4().hex[:8]}"
    proc = _start(project, database_url)
    _wait_for_rows(database_url, proc, rows=500)
    with connect_raw(database_url) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f"GRANT ALL ON items, umbau_backfills, umbau_backfill_chunks TO {role}")
    other = normalize_url(database_url).set(username=role).render_as_string(
        hide_password=False)
    try:
        # what the other role sees of the running worker's session
        assert scalar(other, "SELECT count(*) FROM pg_stat_activity WHERE pid <> "
                      "pg_backend_pid() AND datname = current_database() AND "
                      "backend_start IS NULL") >= 1  # type: ignore[operator]
        refused = _start(project, other, "--restart")
        _out, err = refused.communicate(timeout=60)
        assert refused.returncode == EXIT_BACKFILL_IN_USE, err
        assert "backfill slow is running: worker" in err and len(err.strip().splitlines()) == 1
        _out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert scalar(database_url, "SELECT count(*) FROM items WHERE n <> 1") == 0
    finally:
        proc.kill()
        with connect_raw(database_url) as conn:
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")


def test_terminated_worker_sessions_are_one_line_and_exit_5(project: Path,
                                                             database_url: str) -> None:
    """pg_terminate_backend of every session of `--workers 3`: one line from the parent
    (no traceback, no line per worker), exit code 5 as with one worker; a rerun
    continues and changes every row exactly once."""
    proc = _start(project, database_url, "--workers", "3")
    _wait_for_rows(database_url, proc)
    assert _terminate(database_url) >= 3
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == EXIT_DATABASE, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "lost the database connection during backfill slow" in err
    assert "rerun to resume" in err
    _exactly_once_after_rerun(project, database_url)


def test_a_terminated_progress_session_does_not_stop_the_workers(
        project: Path, database_url: str) -> None:
    """The parent of --workers N only reads progress: losing that session was a
    traceback that abandoned the run; the workers go on and the run completes."""
    proc = _start(project, database_url, "--workers", "2")
    _wait_for_rows(database_url, proc)
    deadline = time.monotonic() + 10
    while not _terminate(database_url, PROGRESS_SQL):
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert scalar(database_url, "SELECT count(*) FROM items WHERE n <> 1") == 0


@pytest.mark.parametrize(("module", "spec", "says"), [
    ("raise RuntimeError('no settings in this shell')\n", "bad_mod:x",
     "importing 'bad_mod' failed (RuntimeError: no settings in this shell)"),
    ("x = (\n", "bad_mod:x", "importing 'bad_mod' failed (SyntaxError:"),
    ("def make():\n    raise ValueError('no config')\n", "bad_mod:make",
     "bad_mod:make() failed (ValueError: no config)"),
    ("def make(table):\n    pass\n", "bad_mod:make", "bad_mod:make() failed (TypeError:"),
])
def test_a_spec_whose_own_code_fails_is_one_line(
        tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], module: str, spec: str, says: str) -> None:
    (tmp_path / "bad_mod.py").write_text(module)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "bad_mod", raising=False)
    code = main(["--database-url", database_url, "backfill", "run", spec])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE, err
    assert says in err and len(err.strip().splitlines()) == 1, err
    assert recorded(database_url) == 0


def test_resume_that_cannot_run_leaves_the_backfill_paused(
        project: Path, database_url: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """`resume NAME` marked the backfill running before finding that its spec no longer
    loads (or now declares another change): it must refuse and leave it paused."""
    settings = Settings(database_url=database_url)
    proc = _start(project, database_url)
    _wait_for_rows(database_url, proc, rows=300)
    pause(settings, "slow")
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    monkeypatch.chdir(project)
    monkeypatch.syspath_prepend(str(project))
    for module in [DEFS.replace('"n + 1"', '"n + 2"'), None]:
        monkeypatch.delitem(sys.modules, "bf_attack", raising=False)
        if module is None:
            (project / "bf_attack.py").unlink()
        else:
            (project / "bf_attack.py").write_text(module)
        code = main(["--database-url", database_url, "backfill", "resume", "slow"])
        err = capsys.readouterr().err
        assert code == EXIT_BACKFILL, err
        assert len(err.strip().splitlines()) == 1, err
        assert backfill_status(settings, "slow")[0].status == "paused"


@pytest.mark.parametrize(("ddl", "says"), [
    ("CREATE VIEW items_view AS SELECT * FROM items", "is a view, not a table"),
    ("CREATE MATERIALIZED VIEW items_view AS SELECT * FROM items",
     "is a materialized view, not a table"),
    ("CREATE SEQUENCE items_view", "is a sequence, not a table"),
])
def test_a_name_that_is_not_a_table_says_what_it_is(
        tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], ddl: str, says: str) -> None:
    with connect_raw(database_url) as conn:
        fill(conn, rows=10)
        conn.execute(ddl)
    (tmp_path / "bf_view.py").write_text(
        "from umbau.backfill import Backfill\n"
        "v = Backfill(name='v', table='items_view', set={'n': 'n + 1'})\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    code = main(["--database-url", database_url, "backfill", "run", "bf_view:v"])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE, err
    assert f"'items_view' {says}" in err and len(err.strip().splitlines()) == 1, err
    assert recorded(database_url) == 0


def test_two_operators_at_once_each_report_their_own_rows(project: Path,
                                                          database_url: str) -> None:
    """Two operators start the same backfill at once: each summary counted every row
    of the backfill as its own (twice the table in all), and the run that found it
    done by the other showed no verification."""
    first = _start(project, database_url, "--workers", "2", "--format", "json",
                   spec="bf_attack:shared")
    second = _start(project, database_url, "--format", "json", spec="bf_attack:shared")
    results = []
    for proc in (first, second):
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(json.loads(out))
    assert scalar(database_url, "SELECT count(*) FROM items WHERE n <> 1") == 0
    assert all(r["rows"] > 0 for r in results), results  # both took part
    assert sum(r["rows"] for r in results) == ROWS, results
    assert all(r["verification"] and r["verification"]["ok"] for r in results), results


def test_a_lock_on_the_state_tables_is_waited_out_like_one_on_rows(
        project: Path, database_url: str) -> None:
    """A lock held on the state tables for longer than lock_timeout (a --restart's
    check, a manual LOCK TABLE) ended a worker at the first lock timeout of anything but
    a batch (a claim, the idle worker's status poll, counting a retry), while a batch's
    lock timeout is retried after backoff. The waiting worker was gone when the chunk's
    owner then died, and the run stopped with the chunk left; now it takes over."""
    proc = _start(project, database_url, "--workers", "2", spec="bf_attack:one",
                  lock_timeout="200ms", retries="10", backoff_base="100ms",
                  backoff_max="500ms")
    _wait_for_rows(database_url, proc)
    with connect_raw(database_url) as conn, conn.transaction():
        conn.execute("LOCK TABLE umbau_backfills IN ACCESS EXCLUSIVE MODE")
        time.sleep(1.5)  # the idle worker polls every 0.25 s
    owner = str(scalar(database_url, "SELECT owner FROM umbau_backfill_chunks"))
    with contextlib.suppress(ProcessLookupError):  # it may have died of the lock
        os.kill(int(owner.split(":")[1]), signal.SIGKILL)  # host:pid:uuid
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert scalar(database_url, "SELECT count(*) FROM items WHERE n <> 1") == 0


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_while_counting_is_one_line_and_writes_nothing(
        project: Path, database_url: str, signum: int, code: int) -> None:
    """SIGTERM during the first count (long on a big table) ended the process silently
    (killed by the signal, no line); now it is reported like one during the batches."""
    (project / "bf_count.py").write_text(
        "from umbau.backfill import Backfill\n"
        "slow_count = Backfill(name='slow_count', table='items', set={'n': 'n + 1'},\n"
        "                      where='pg_sleep(0.001) IS NOT NULL')\n")
    proc = _start(project, database_url, spec="bf_count:slow_count")
    deadline = time.monotonic() + 30
    while not scalar(database_url, "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                     "current_database() AND query LIKE '%pg_sleep%count(*)%' "
                     "AND pid <> pg_backend_pid()"):
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    os.kill(proc.pid, signum)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert f"stopped by {signal.Signals(signum).name}" in err and "rerun" in err
    assert recorded(database_url) == 0
    assert _changed(database_url) == 0
