"""`umbau dashboard` as a process manager runs it: SIGTERM and Ctrl-C stop it normally
(exit 0, requests in flight finished), and --format json tells a machine where it
serves and why it stopped."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.db


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_dashboard_normally(tmp_path: Path, database_url: str,
                                               signum: int) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("UMBAU_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "umbau", "--database-url", database_url, "dashboard",
         "--port", str(port), "--format", "json"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        ready = json.loads(process.stdout.readline())
        assert ready == {"url": f"http://127.0.0.1:{port}/"}
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(ready["url"], timeout=2) as response:
                    assert response.status == 200
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        process.send_signal(signum)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert json.loads(out.strip().splitlines()[-1]) == {
        "url": ready["url"], "stopped_by": signal.Signals(signum).name}
