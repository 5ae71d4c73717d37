"""Start and stop the application's stand-in service (``health_server.py``) in the
background, as the guides' ``docker-compose up -d`` / ``down`` do for the real one.

    python release/service.py start --version 1.1.0   # waits until it listens
    python release/service.py stop                    # SIGTERM, then SIGKILL after 10 s
    python release/service.py status

The port comes from ``APP_PORT`` (default 8000), the env file is ``.env`` beside the
``release/`` folder, the pid file and the log are in ``.run/`` there. Both commands are
idempotent (starting a running service restarts it; stopping a stopped one does nothing),
so a release that reruns them after a crash does no harm. The service runs in a session
of its own with its output in the log: the release's command step (which waits for its
command's output) returns at once, and killing the step's process group leaves it alone.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FOLDER = HERE.parent
RUN = FOLDER / ".run"
PID_FILE = RUN / "app.pid"
LOG_FILE = RUN / "app.log"


def port() -> int:
    return int(os.environ.get("APP_PORT", "8000"))


def running_pid() -> int | None:
    try:
        pid = int(PID_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def listening(port_number: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port_number), timeout=0.5):
            return True
    except OSError:
        return False


def stop() -> int:
    pid = running_pid()
    if pid is None:
        PID_FILE.unlink(missing_ok=True)
        print("not running")
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while running_pid() is not None and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.05)
    if running_pid() is not None:
        os.kill(pid, signal.SIGKILL)
        _reap(pid)
    PID_FILE.unlink(missing_ok=True)
    print(f"stopped (pid {pid})")
    return 0


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):  # not our child: its parent reaps it
        os.waitpid(pid, os.WNOHANG)


def start(version: str) -> int:
    stop()
    RUN.mkdir(exist_ok=True)
    number = port()
    if listening(number):
        print(f"port {number} is taken by another program: set APP_PORT", file=sys.stderr)
        return 1
    with open(LOG_FILE, "ab") as log, open(os.devnull, "rb") as devnull:
        proc = subprocess.Popen(
            [sys.executable, str(HERE / "health_server.py"), "--version", version,
             "--port", str(number), "--env-file", str(FOLDER / ".env")],
            stdin=devnull, stdout=log, stderr=log, start_new_session=True, cwd=FOLDER)
    PID_FILE.write_text(f"{proc.pid} {version}\n")
    deadline = time.monotonic() + 15
    while not listening(number):
        if proc.poll() is not None or time.monotonic() > deadline:
            tail = LOG_FILE.read_text(errors="replace").splitlines()[-5:]
            print(f"the {version} service did not start: " + " | ".join(tail),
                  file=sys.stderr)
            stop()
            return 1
        time.sleep(0.05)
    print(f"started {version} (pid {proc.pid}, port {number})")
    return 0


def status() -> int:
    pid = running_pid()
    if pid is None:
        print("not running")
        return 3
    print(f"running: pid {pid}, {PID_FILE.read_text().split()[1]}, port {port()}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="start/stop the example's service")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("start").add_argument("--version", required=True)
    sub.add_parser("stop")
    sub.add_parser("status")
    args = parser.parse_args(argv)
    if args.command == "start":
        return start(args.version)
    return stop() if args.command == "stop" else status()


if __name__ == "__main__":
    sys.exit(main())
