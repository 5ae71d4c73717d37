"""The examples' release scripts on their own: release/service.py starts and stops the
stand-in service idempotently, and its /health says what is missing (no database
needed: an unreachable one is an answer too)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from example_support import EXAMPLES


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def health(port: int) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


@pytest.mark.parametrize(("example", "old", "renamed"), [
    ("etsy_sevdesk", "1.0.0", ("ETSY_SHOP_ID", "ETSY_DEFAULT_SHOP_ID")),
    ("ablage", "0.9.0", ("OCR_ENGINE", "OCR_BACKEND")),
])
def test_service_and_health(tmp_path: Path, example: str, old: str,
                            renamed: tuple[str, str]) -> None:
    shutil.copytree(EXAMPLES / example / "release", tmp_path / "release")
    env = (EXAMPLES / example / ".env.example").read_text()
    # a database nobody listens on: /health must say so, not hang or crash
    dead = free_port()
    env = "\n".join(f"DATABASE_URL=postgresql://nobody@127.0.0.1:{dead}/none"
                    if line.startswith("DATABASE_URL=") else line for line in env.splitlines())
    (tmp_path / ".env").write_text(env + "\n")
    port = free_port()
    service = [sys.executable, str(tmp_path / "release" / "service.py")]
    environ = {"APP_PORT": str(port), "PATH": "/usr/bin:/bin"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*service, *args], env=environ, capture_output=True, text=True,
                              timeout=60, check=False)

    try:
        assert run("start", "--version", old).returncode == 0
        status, body = health(port)
        assert status == 503 and body["status"] == "database" and body["version"] == old
        # the new version reads the renamed key, which the old .env does not have
        assert run("start", "--version", {"1.0.0": "1.1.0", "0.9.0": "1.0.0"}[old]
                   ).returncode == 0  # a restart: the old one is stopped first
        status, body = health(port)
        assert status == 503 and body["status"] == "misconfigured"
        assert renamed[1] in str(body["error"]) and renamed[0] not in str(body["error"])
        assert "running" in run("status").stdout
        # another program on the port: start refuses, naming APP_PORT
        assert run("stop").returncode == 0
        with socket.socket() as taken:
            taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT
            taken.bind(("127.0.0.1", port))
            taken.listen()
            failed = run("start", "--version", old)
            assert failed.returncode == 1 and "APP_PORT" in failed.stderr
    finally:
        assert run("stop").returncode == 0
    assert run("stop").stdout.strip() == "not running"  # stopping twice is fine
    assert run("status").returncode == 3
