"""Every step kind in one release, and a failure injected after each step in turn: the
revision, the data and the env file are exactly as before the release."""

from __future__ import annotations

import http.server
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from release_support import (
    release_project,
    release_rows,
    settings,
    snapshot,
    umbau,
    write_plan,
)
from sqlalchemy import text

from umbau.errors import EnvFileError, ReleaseFailed
from umbau.postgres.connect import connect
from umbau.release import run_release

pytestmark = pytest.mark.db

REDIS = "redis://127.0.0.1:6379/0"


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/health"
    server.shutdown()
    server.server_close()


@pytest.fixture
def cache_prefix() -> Iterator[str]:
    client = redis.Redis.from_url(REDIS)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.skip("no Redis server on 127.0.0.1:6379")
    prefix = f"umbau-test-{uuid.uuid4().hex[:8]}"
    for i in range(30):
        client.set(f"{prefix}:shop:{i}", "cached")
    client.set(f"{prefix}-other", "kept")
    yield prefix
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)


def full_plan(health: str, rollback: str = "auto") -> str:
    return f"""
STEP
kind = "preflight"
commands = ["true"]
STEP
kind = "backup"
STEP
kind = "command"
name = "stop services"
run = "echo stopped >> services.log"
undo = "echo started >> services.log"
STEP
kind = "migrate"
name = "migrate pre"
target = "r2"
STEP
kind = "backfill"
names = ["shopapp:orders_total"]
STEP
kind = "env"
file = ".env"
rename = {{ ETSY_SHOP_ID = "ETSY_DEFAULT_SHOP_ID" }}
remove = ["LEGACY_MODE"]
add = {{ OCR_TIMEOUT_SECONDS = "300" }}
require = ["DATABASE_URL", "ETSY_DEFAULT_SHOP_ID"]
STEP
kind = "migrate"
name = "migrate post"
target = "head"
STEP
kind = "cache"
url = "${{REDIS_URL}}"
patterns = ["${{CACHE_PREFIX}}:shop:*"]
STEP
kind = "health"
url = "{health}"
interval = "100ms"
deadline = "5s"
STEP
kind = "smoke"
run = "grep -q ETSY_DEFAULT_SHOP_ID .env"
"""


def shop_project(tmp_path: Path, url: str, **kwargs: str) -> Path:
    folder = release_project(tmp_path, url, **kwargs)
    (folder / "shopapp.py").write_text(
        "from umbau.backfill import Backfill\n\n"
        "orders_total = Backfill(name='orders_total', table='orders',\n"
        "                        set={'total': 'amount * 2'}, where='total IS NULL',\n"
        "                        verify='total = amount * 2')\n", encoding="utf-8")
    return folder


def environ(prefix: str) -> dict[str, str]:
    return {"REDIS_URL": REDIS, "CACHE_PREFIX": prefix}


def test_every_step_kind(tmp_path: Path, database_url: str, health_url: str,
                         cache_prefix: str) -> None:
    folder = shop_project(tmp_path, database_url)
    write_plan(folder, full_plan(health_url).replace("${CACHE_PREFIX}", cache_prefix))
    result = run_release(settings(folder, database_url), "1.1.0",
                         environ={"REDIS_URL": REDIS})
    assert [s.outcome for s in result.steps] == ["done"] * 10
    by_name = {s.name: s for s in result.steps}
    assert by_name["cache"].detail["deleted"] == 30
    assert by_name["health"].detail["status"] == 200
    assert by_name["backfill"].detail["backfills"]["orders_total"]["rows"] == 50
    assert by_name["preflight"].detail["lint"] == "passed"
    assert by_name["preflight"].detail["pending"] == ["r2", "r3"]
    assert by_name["migrate pre"].detail["step_before"] == ["r1"]
    env = (folder / ".env").read_text()
    assert "ETSY_DEFAULT_SHOP_ID=42" in env and "LEGACY_MODE" not in env
    assert "OCR_TIMEOUT_SECONDS=300" in env and env.startswith("# the shop\n")
    kept = Path(by_name["env"].detail["env_backup"])
    assert "ETSY_SHOP_ID=42" in kept.read_text()
    client = redis.Redis.from_url(REDIS)
    assert list(client.scan_iter(f"{cache_prefix}:shop:*")) == []
    assert client.get(f"{cache_prefix}-other") == b"kept"
    with connect(database_url) as conn:
        assert conn.execute(text("SELECT count(*) FROM orders WHERE total = amount * 2")
                            ).scalar() == 50
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "r3"


# after how many steps of the full plan the injected failure comes
@pytest.mark.slow
@pytest.mark.parametrize("after", range(0, 11))
def test_a_failure_after_any_step_leaves_everything_as_before(
        tmp_path: Path, database_url: str, health_url: str, cache_prefix: str,
        after: int) -> None:
    folder = shop_project(tmp_path, database_url)
    steps = full_plan(health_url).split("STEP\n")
    failing = 'kind = "command"\nname = "injected"\nrun = "echo injected >&2; exit 7"\n'
    plan = "STEP\n".join([*steps[:after + 1], failing, *steps[after + 1:]])
    write_plan(folder, plan)
    before = snapshot(database_url, folder)
    with pytest.raises(ReleaseFailed, match=r"step 'injected': `echo injected >&2; exit 7` "
                                            r"exited 7: injected"):
        run_release(settings(folder, database_url), "1.1.0", environ=environ(cache_prefix))
    assert snapshot(database_url, folder) == before
    rows = release_rows(database_url)
    assert rows[-1] == ("injected", "command", "failed")
    assert [outcome for _, _, outcome in rows[:-1]] == ["undone"] * after
    log = (folder / "services.log").read_text() if (folder / "services.log").exists() else ""
    assert log == ("stopped\nstarted\n" if after >= 3 else "")


def test_restore_rolls_back_an_irreversible_release(tmp_path: Path, database_url: str,
                                                    health_url: str, cache_prefix: str) -> None:
    folder = shop_project(tmp_path, database_url, r3_down="pass")
    write_plan(folder, full_plan(health_url).replace(
        'run = "grep -q ETSY_DEFAULT_SHOP_ID .env"', 'run = "exit 1"'))
    before = snapshot(database_url, folder)
    with pytest.raises(ReleaseFailed) as caught:
        run_release(settings(folder, database_url), "1.1.0", environ=environ(cache_prefix))
    assert "restored" in str(caught.value)
    assert snapshot(database_url, folder) == before
    rows = release_rows(database_url)  # written again after the restore
    assert [r[2] for r in rows] == ["undone"] * 9 + ["failed"]
    result = caught.value.result
    assert result.rollback_method == "restore"  # type: ignore[attr-defined]
    with connect(database_url) as conn:
        assert conn.execute(text("SELECT to_regclass('shops')")).scalar() is None


def test_a_missing_required_env_key_stops_before_anything_changes(
        tmp_path: Path, database_url: str, health_url: str, cache_prefix: str) -> None:
    folder = shop_project(tmp_path, database_url)
    write_plan(folder, full_plan(health_url).replace('"ETSY_DEFAULT_SHOP_ID"]',
                                                     '"ETSY_DEFAULT_SHOP_ID", "NOPE"]'))
    before = snapshot(database_url, folder)
    with pytest.raises(EnvFileError, match="NOPE"):
        run_release(settings(folder, database_url), "1.1.0", environ=environ(cache_prefix))
    assert snapshot(database_url, folder) == before
    assert release_rows(database_url) == []
    assert not (folder / "backups").exists()


def test_a_backfill_by_name_is_waited_for(tmp_path: Path, database_url: str) -> None:
    """A bare name: a backfill someone else runs (a revision, a worker); unknown: fails."""
    from umbau.backfill import load_backfill, run_backfill
    from umbau.commands import migrate

    folder = shop_project(tmp_path, database_url)
    migrate.upgrade(settings(folder, database_url), "r2", backup="never")
    run_backfill(settings(folder, database_url),
                 load_backfill("shopapp:orders_total", folder))
    write_plan(folder, 'STEP\nkind = "backfill"\nnames = ["orders_total"]\n')
    result = run_release(settings(folder, database_url), "1.1.0")
    assert result.steps[0].detail["backfills"] == {"orders_total": {"status": "done"}}
    write_plan(folder, 'STEP\nkind = "backfill"\nnames = ["nobody_runs_this"]\n',
               version="1.2.0")
    with pytest.raises(ReleaseFailed, match="no backfill named 'nobody_runs_this'"):
        run_release(settings(folder, database_url), "1.2.0")


PAUSE = ('kind = "command"\nname = "pause"\n'
         'run = "echo $$ > pause.pid; if [ ! -f resumed ]; then sleep 60; fi"\n')


@pytest.mark.slow
@pytest.mark.parametrize("after", range(1, 11))
def test_kill_9_after_any_step_then_no_step_runs_twice(
        tmp_path: Path, database_url: str, health_url: str, cache_prefix: str,
        after: int) -> None:
    import signal
    import time

    folder = shop_project(tmp_path, database_url)
    steps = full_plan(health_url).split("STEP\n")
    write_plan(folder, "STEP\n".join([*steps[:after + 1], PAUSE, *steps[after + 1:]]))
    proc = umbau(folder, database_url, "release", "run", "1.1.0",
                 environ=environ(cache_prefix))
    deadline = time.monotonic() + 120
    while not (folder / "pause.pid").exists() or not release_rows(database_url) \
            or release_rows(database_url)[-1] != ("pause", "command", "running"):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the pause step never came"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    (folder / "resumed").touch()
    result = run_release(settings(folder, database_url), "1.1.0", assume_yes=True,
                         environ=environ(cache_prefix))
    assert result.outcome == "released" and result.resumed
    rows = release_rows(database_url)
    names = [name for name, _, _ in rows]
    assert [n for n in names if n != "pause"] == [n for n in dict.fromkeys(names)
                                                  if n != "pause"]  # each exactly once
    assert {outcome for name, _, outcome in rows if name != "pause"} == {"done"}
    assert [o for n, _, o in rows if n == "pause"] == ["skipped", "done"]
    if after >= 3:
        assert (folder / "services.log").read_text() == "stopped\n"
    env = (folder / ".env").read_text()
    assert "ETSY_DEFAULT_SHOP_ID=42" in env and env.count("OCR_TIMEOUT_SECONDS") == 1
    with connect(database_url) as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "r3"
        assert conn.execute(text("SELECT count(*) FROM orders WHERE total = amount * 2")
                            ).scalar() == 50
