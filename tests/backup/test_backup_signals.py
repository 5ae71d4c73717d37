"""Real signals to a real umbau process: pg_dump / pg_restore die with it, SIGTERM is
handled like Ctrl-C, a killed restore leaves the target as it was.

pg_dump is held mid-run by a lock on a view: umbau's own catalog queries read tables
only, pg_dump locks views too, so umbau starts pg_dump and pg_dump waits on the lock.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from backup_support import table_checksums
from helpers import add_revision, make_project
from sqlalchemy import text

from umbau.backup.dump import backup
from umbau.backup.prune import list_backups
from umbau.backup.restore import restore
from umbau.postgres.connect import connect
from umbau.settings import Settings

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

# Runs umbau's CLI; "watchdog" as first argument forces the portable fallback.
RUNNER = """
import functools, sys
if sys.argv[1] == "watchdog":
    from umbau.postgres import clients
    clients.spawn = functools.partial(clients.spawn, watchdog=True)
from umbau.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _start(args: list[str], cwd: Path, mode: str = "prctl") -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", RUNNER, mode, *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(condition: Callable[[], object], what: str, timeout: float = 60) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _sessions(server_url: str, database: str, app: str) -> list[tuple[int, str | None]]:
    """(pid, wait_event_type) of the client program's sessions on ``database``."""
    with connect(server_url) as conn:
        return [(int(p), w) for p, w in conn.execute(text(
            "SELECT pid, wait_event_type FROM pg_stat_activity WHERE datname = :d "
            "AND application_name = :a"), {"d": database, "a": app})]


def _children(pid: int, name: str) -> list[int]:
    """Processes called ``name`` whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            comm = stat[stat.index("(") + 1:stat.rindex(")")]
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            if ppid == pid and comm == name:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for an init that does not reap is not running)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


@contextmanager
def _view_locked(url: str) -> Iterator[None]:
    """A view under ACCESS EXCLUSIVE for the block: pg_dump waits for it."""
    with connect(url) as conn:
        conn.execute(text("CREATE OR REPLACE VIEW held AS SELECT 1 AS x"))
        conn.commit()
        conn.execute(text("LOCK TABLE held IN ACCESS EXCLUSIVE MODE"))
        yield
        conn.rollback()


def _db(url: str) -> str:
    return url.rsplit("/", 1)[1].split("?")[0]


def _blocked(server_url: str, url: str, app: str) -> object:
    return _wait_for(lambda: [s for s in _sessions(server_url, _db(url), app)
                              if s[1] == "Lock"], f"{app} waiting on the lock")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("mode", ["prctl", "watchdog"])
def test_kill_9_of_backup_kills_pg_dump(settings: Settings, server_url: str, tmp_path: Path,
                                        mode: str) -> None:
    url = settings.require_database_url()
    folder = tmp_path / "backups"
    with _view_locked(url):
        umbau = _start(["--database-url", url, "backup", "--dir", str(folder)], tmp_path, mode)
        _blocked(server_url, url, "pg_dump")
        dumps = _children(umbau.pid, "pg_dump")
        assert dumps
        umbau.kill()
        umbau.wait()
        _wait_for(lambda: not any(_alive(p) for p in dumps), "pg_dump to die")
        _wait_for(lambda: not _sessions(server_url, _db(url), "pg_dump"),
                  "pg_dump's session to end")
    # The killed backup's partial is still there; the next backup removes it.
    left = list(folder.glob("*.partial"))
    assert len(left) == 1
    assert list_backups(settings, folder).abandoned == left
    result = backup(settings)
    assert result.cleaned == left and not list(folder.glob("*.partial"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigterm_of_backup_is_handled_like_ctrl_c(settings: Settings, server_url: str,
                                                  tmp_path: Path) -> None:
    url = settings.require_database_url()
    folder = tmp_path / "backups"
    with _view_locked(url):
        umbau = _start(["--database-url", url, "backup", "--quiet", "--dir", str(folder)],
                       tmp_path)
        _blocked(server_url, url, "pg_dump")
        dumps = _children(umbau.pid, "pg_dump")
        umbau.send_signal(signal.SIGTERM)
        _, err = umbau.communicate(timeout=60)
    assert umbau.returncode == 143
    assert [line for line in err.splitlines() if line.strip()] == [
        "umbau: error: terminated (SIGTERM): backup stopped; pg_dump was stopped and the "
        "partial backup removed"]
    assert dumps and not any(_alive(p) for p in dumps)
    assert list(folder.iterdir()) == []
    assert not _sessions(server_url, _db(url), "pg_dump")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_killed_restore_leaves_the_target_as_it_was(
        settings: Settings, server_url: str, tmp_path: Path,
        make_database: Callable[[], str], how: signal.Signals) -> None:
    taken = backup(settings)
    target = make_database()
    restore(settings, taken.path, database_url=target)
    with connect(target) as conn:
        conn.execute(text("DELETE FROM orders WHERE id % 2 = 0"))
        conn.commit()
    before = table_checksums(target)
    with connect(target) as reader:  # holds ACCESS SHARE: --clean's DROP waits for it
        reader.execute(text("SELECT count(*) FROM orders"))
        umbau = _start(["--database-url", target, "restore", str(taken.path), "--clean",
                        "--yes"], tmp_path)
        _blocked(server_url, target, "pg_restore")
        restores = _children(umbau.pid, "pg_restore")
        umbau.send_signal(how)
        umbau.communicate(timeout=60)
        reader.rollback()
    assert umbau.returncode == (-9 if how == signal.SIGKILL else 143)
    _wait_for(lambda: not any(_alive(p) for p in restores), "pg_restore to die")
    _wait_for(lambda: not _sessions(server_url, _db(target), "pg_restore"),
              "pg_restore's session to end")
    assert table_checksums(target) == before


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_killed_upgrade_during_its_backup(tmp_path: Path, server_url: str,
                                          database_url: str, how: signal.Signals) -> None:
    project = make_project(tmp_path / "p")
    add_revision(project, "r1", None, upgrade='op.execute("CREATE TABLE t (id int)")',
                 downgrade='op.execute("DROP TABLE t")')
    with _view_locked(database_url):
        umbau = _start(["--config", str(project / "umbau.toml"), "--database-url",
                        database_url, "upgrade", "--backup", "always", "--allow-unsafe"],
                       project)
        _blocked(server_url, database_url, "pg_dump")
        dumps = _children(umbau.pid, "pg_dump")
        os.kill(umbau.pid, how)
        _, err = umbau.communicate(timeout=60)
        # While the lock is still held: neither pg_dump nor its session waits for it.
        _wait_for(lambda: not any(_alive(p) for p in dumps), "pg_dump to die")
        _wait_for(lambda: not _sessions(server_url, _db(database_url), "pg_dump"),
                  "pg_dump's session to end")
    with connect(database_url) as conn:
        assert conn.execute(text("SELECT to_regclass('t')")).scalar() is None
    if how == signal.SIGTERM:
        assert umbau.returncode == 143 and "terminated (SIGTERM): backup stopped" in err
        assert (project / "backups").is_dir()
        assert not list((project / "backups").glob("*.partial"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_killed_copy_leaves_the_target_empty(settings: Settings, server_url: str,
                                             tmp_path: Path,
                                             make_database: Callable[[], str],
                                             how: signal.Signals) -> None:
    url = settings.require_database_url()
    target = make_database()
    with _view_locked(url):
        umbau = _start(["copy", "--from", url, "--to", target], tmp_path)
        _blocked(server_url, url, "pg_dump")
        dumps = _children(umbau.pid, "pg_dump")
        umbau.send_signal(how)
        _, err = umbau.communicate(timeout=60)
        # While the lock is still held: neither pg_dump nor its session waits for it.
        _wait_for(lambda: not any(_alive(p) for p in dumps), "pg_dump to die")
        _wait_for(lambda: not _sessions(server_url, _db(url), "pg_dump"),
                  "pg_dump's session to end")
    if how == signal.SIGTERM:
        assert umbau.returncode == 143 and "terminated (SIGTERM): copy stopped" in err
    assert dumps and table_checksums(target) == {}
