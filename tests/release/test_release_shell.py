"""Release commands: own process group, timeout kills the whole group, output tail."""

from __future__ import annotations

import os
import time
from pathlib import Path

from umbau.release.shell import run_command


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie waiting for its reaper counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_a_timeout_kills_the_command_and_what_it_started(tmp_path: Path) -> None:
    started = time.monotonic()
    result = run_command("sleep 60 & echo $! > child.pid; echo waiting; wait", cwd=tmp_path,
                         timeout=1.0)
    assert time.monotonic() - started < 10
    assert result.timed_out and not result.ok
    assert result.describe().startswith("`sleep 60 & echo $! > child.pid; echo waiting; "
                                        "wait` timed out after 1s (killed)")
    assert result.describe().endswith(": waiting")
    child = int((tmp_path / "child.pid").read_text())
    deadline = time.monotonic() + 5
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child)


def test_a_timeout_says_the_limit_not_the_kill_grace(tmp_path: Path) -> None:
    # the command ignores SIGTERM: it dies by SIGKILL after the grace (5 s)
    result = run_command("trap '' TERM; echo $$ > pid; sleep 30", cwd=tmp_path, timeout=2.0)
    assert result.timed_out and result.seconds > 6
    assert "timed out after 2s (killed)" in result.describe()


def test_exit_code_output_tail_cwd_and_environment(tmp_path: Path) -> None:
    result = run_command('for i in 1 2 3 4 5; do echo "line $i"; done; pwd; echo "$GREETING"'
                         " >&2; exit 3", cwd=tmp_path, timeout=10, env={"GREETING": "hallo"})
    assert result.returncode == 3 and not result.timed_out
    assert result.tail() == f"line 5 | {tmp_path} | hallo"
    assert result.describe().endswith(f"exited 3: line 5 | {tmp_path} | hallo")
    ok = run_command("true", cwd=tmp_path, timeout=None)
    assert ok.ok and ok.describe() == "`true` exited 0"
