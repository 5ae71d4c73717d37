"""The three expositions through the real CLI on a real PostgreSQL: a textfile written
and parsed, a Pushgateway (a real HTTP server in a thread) receiving the PUT, the port
scraped while a real `umbau` process runs; and the unusable targets (exit 41) that leave
the database as it was."""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import add_revision, linear_project
from prometheus_client.parser import text_string_to_metric_families

from umbau.cli import main
from umbau.errors import EXIT_METRICS, EXIT_MIGRATION
from umbau.postgres.driver import connect_raw

pytestmark = pytest.mark.db

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def run(project: Path, url: str, *args: str) -> int:
    return main(["--config", str(project / "umbau.toml"), "--database-url", url, *args])


def version(url: str) -> str | None:
    with connect_raw(url) as conn:
        if conn.execute("SELECT to_regclass('alembic_version')").fetchone()[0] is None:  # type: ignore[index]
            return None
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        return row[0] if row else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_textfile_after_an_upgrade(tmp_path: Path, database_url: str) -> None:
    project = linear_project(tmp_path / "p", 3)
    target = tmp_path / "textfile" / "umbau.prom"
    target.parent.mkdir()
    assert run(project, database_url, "upgrade", "--metrics-textfile", str(target)) == 0
    got = parse(target.read_text())
    for rev in ("r1", "r2", "r3"):
        assert got[("umbau_migration_duration_seconds_count",
                    (("direction", "upgrade"), ("revision", rev)))] == 1
    assert got[("umbau_lock_wait_seconds_count", ())] == 1  # the migrator lock, once
    assert got[("umbau_lock_retries_total", ())] == 0
    assert got[("umbau_command_exit_code", (("command", "upgrade"),))] == 0
    assert [p.name for p in target.parent.iterdir()] == ["umbau.prom"]  # no temp file left
    assert oct(target.stat().st_mode & 0o777) == "0o644"


def test_a_failed_revision_is_counted(tmp_path: Path, database_url: str) -> None:
    project = linear_project(tmp_path / "p", 1)
    add_revision(project, "r2", "r1", upgrade='op.execute("SELECT * FROM no_such_table")')
    target = tmp_path / "umbau.prom"
    assert run(project, database_url, "upgrade", "--metrics-textfile", str(target)) \
        == EXIT_MIGRATION
    got = parse(target.read_text())
    assert got[("umbau_migration_errors_total",
                (("error_type", "MigrationFailed"), ("revision", "r2")))] == 1
    assert got[("umbau_migration_duration_seconds_count",
                (("direction", "upgrade"), ("revision", "r1")))] == 1
    assert got[("umbau_command_exit_code", (("command", "upgrade"),))] == EXIT_MIGRATION


class _Gateway(http.server.BaseHTTPRequestHandler):
    received: list[tuple[str, str, bytes]]
    status = 200

    def _record(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.received.append((self.command, self.path, self.rfile.read(length)))
        self.send_response(self.status)
        self.end_headers()

    do_PUT = do_POST = _record

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def gateway() -> Iterator[tuple[str, type[_Gateway], http.server.HTTPServer]]:
    handler = type("Handler", (_Gateway,), {"received": [], "status": 200})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler, server
    finally:
        server.shutdown()
        server.server_close()


def test_pushgateway_receives_a_put(tmp_path: Path, database_url: str, gateway: Any) -> None:
    url, handler, _ = gateway
    project = linear_project(tmp_path, 2)
    assert run(project, database_url, "upgrade", "--pushgateway", url) == 0
    assert len(handler.received) == 1
    method, path, body = handler.received[0]
    assert method == "PUT"
    assert path == f"/metrics/job/umbau/command/upgrade/host/{socket.gethostname()}"
    got = parse(body.decode())
    assert got[("umbau_migration_duration_seconds_count",
                (("direction", "upgrade"), ("revision", "r2")))] == 1
    assert got[("umbau_command_exit_code", (("command", "upgrade"),))] == 0


def test_a_push_that_fails_after_the_command_warns_and_keeps_its_exit_code(
        tmp_path: Path, database_url: str, gateway: Any,
        capsys: pytest.CaptureFixture[str]) -> None:
    url, handler, _ = gateway
    handler.status = 500
    project = linear_project(tmp_path, 1)
    assert run(project, database_url, "upgrade", "--pushgateway", url) == 0
    err = capsys.readouterr().err
    assert "umbau: warning: could not push the metrics to" in err
    assert version(database_url) == "r1" and len(handler.received) == 1


def test_unusable_targets_exit_41_before_anything_runs(
        tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    project = linear_project(tmp_path / "p", 1)
    closed = free_port()  # nothing listens there
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cases = [
            (["--pushgateway", f"http://127.0.0.1:{closed}"], "cannot connect to"),
            (["--pushgateway", "ftp://gateway"], "not an http(s) URL"),
            (["--metrics-textfile", str(tmp_path / "missing" / "u.prom")], "does not exist"),
            (["--metrics-textfile", str(tmp_path)], "is a folder"),
            (["--metrics-port", str(port)], f"cannot listen on 127.0.0.1:{port}"),
        ]
        for options, expected in cases:
            capsys.readouterr()
            assert run(project, database_url, "upgrade", *options) == EXIT_METRICS, options
            err = capsys.readouterr().err
            assert expected in err and len(err.strip().splitlines()) == 1, err
            assert version(database_url) is None  # nothing ran: no version table yet
    assert not (tmp_path / "missing").exists()


def test_a_textfile_write_that_fails_after_the_command_warns(
        tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    if not os.access("/proc", os.W_OK):
        pytest.skip("needs /proc to pass the writability check (root)")
    project = linear_project(tmp_path, 1)
    # /proc passes access(2) for root, but no file can be created in it
    assert run(project, database_url, "upgrade", "--metrics-textfile",
               "/proc/umbau-test.prom") == 0
    err = capsys.readouterr().err
    assert "umbau: warning: could not write the metrics to /proc/umbau-test.prom" in err
    assert version(database_url) == "r1"


def test_unwritable_textfile_folder(tmp_path: Path, database_url: str,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    project = linear_project(tmp_path / "p", 1)
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o555)
    assert run(project, database_url, "upgrade", "--metrics-textfile",
               str(folder / "u.prom")) == EXIT_METRICS
    assert "not writable" in capsys.readouterr().err
    assert version(database_url) is None


def _scrape(port: int) -> Samples | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            return parse(response.read().decode())
    except OSError:
        return None


def _umbau(cwd: Path, url: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "UMBAU_DATABASE_URL": url, "PYTHONPATH": str(cwd)}
    return subprocess.Popen([sys.executable, "-m", "umbau", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _scrape_until(proc: subprocess.Popen[str], port: int, ready: Any,
                  timeout: float = 60.0) -> Samples:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        got = _scrape(port)
        if got is not None and ready(got):
            return got
        time.sleep(0.1)
    raise AssertionError("the metrics never showed up")


def test_scraped_while_a_backfill_runs(tmp_path: Path, database_url: str) -> None:
    with connect_raw(database_url) as conn:
        conn.execute("CREATE TABLE items (id bigint PRIMARY KEY, n int NOT NULL DEFAULT 0)")
        conn.execute("INSERT INTO items SELECT g FROM generate_series(1, 20000) g")
    (tmp_path / "bf_obs.py").write_text(
        "from umbau.backfill import Backfill\n"
        "slow = Backfill(name='slow', table='items', set={'n': 'n + 1'}, batch_size=100,\n"
        "                max_batch_size=100, min_batch_size=100, pause=0.05)\n")
    port = free_port()
    proc = _umbau(tmp_path, database_url, "backfill", "run", "bf_obs:slow",
                  "--metrics-port", str(port))
    try:
        key = ("umbau_backfill_rows_total", (("backfill", "slow"),))
        first = _scrape_until(proc, port, lambda got: got.get(key, 0) >= 300)
        assert first[("umbau_backfill_rows_per_second", (("backfill", "slow"),))] > 0
        assert first[("umbau_backfill_eta_seconds", (("backfill", "slow"),))] > 0
        later = _scrape_until(proc, port, lambda got: got.get(key, 0) > first[key])
        assert later[key] > first[key]  # a counter that grows while the run goes on
    finally:
        proc.terminate()
        proc.communicate(timeout=60)


def test_scraped_while_an_upgrade_runs(tmp_path: Path, database_url: str) -> None:
    project = linear_project(tmp_path, 1)
    add_revision(project, "r2", "r1", upgrade='op.execute("SELECT pg_sleep(4)")')
    port = free_port()
    proc = _umbau(project, database_url, "upgrade", "--metrics-port", str(port))
    try:
        got = _scrape_until(proc, port, lambda got: (
            "umbau_migration_duration_seconds_count",
            (("direction", "upgrade"), ("revision", "r1"))) in got)
        assert got[("umbau_lock_wait_seconds_count", ())] == 1
        assert ("umbau_migration_duration_seconds_count",
                (("direction", "upgrade"), ("revision", "r2"))) not in got  # still running
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert _scrape(port) is None  # the endpoint lives as long as the command
