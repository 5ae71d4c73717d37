"""Shell commands of a release (``command``, ``smoke``, preflight commands, ``undo``).

Each runs as ``sh -c COMMAND`` in a process group of its own, so that a timeout ends the
command and everything it started (``killpg``: SIGTERM, then SIGKILL after a grace
period). It dies with umbau: the shell asks the kernel for SIGKILL when umbau dies
(``prctl(PR_SET_PDEATHSIG)``, man 2 prctl, as :mod:`umbau.postgres.clients` does for
pg_dump), and a small watchdog in a session of its own kills the whole group when the
pipe only umbau holds closes without a word (umbau died, even by ``kill -9``): the
grandchildren of the shell do not outlive a killed release either.

Output (stdout and stderr together) is captured; the last lines go into the error line.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from umbau.masking import mask_secrets

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
GRACE = 5.0  # seconds between SIGTERM and SIGKILL to the group on a timeout
_TAIL_BYTES = 4000

_WATCHDOG = """
import os, signal, sys
pgid = int(sys.argv[1])
if sys.stdin.buffer.read() != b"done":
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except OSError:
            break
        if sig == signal.SIGTERM:
            import time
            time.sleep(0.5)
"""


@dataclass
class CommandResult:
    """A finished command: exit code (negative: killed by that signal), seconds, whether
    the timeout ended it, and the tail of its output (at most 4000 bytes)."""

    command: str
    returncode: int
    seconds: float
    timed_out: bool
    output: str
    timeout: float | None = None  # seconds: the limit that was given

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def tail(self, lines: int = 3) -> str:
        """The last ``lines`` non-empty lines of the output, joined with `` | ``."""
        kept = [line.strip() for line in self.output.splitlines() if line.strip()]
        return " | ".join(kept[-lines:])[-300:]

    def describe(self) -> str:
        """One line: what failed, how, and the output's last lines."""
        if self.timed_out:
            # the limit, not the time with the kill's grace (seconds has that)
            limit = self.seconds if self.timeout is None else self.timeout
            how = f"timed out after {limit:g}s (killed)"
        elif self.returncode < 0:
            how = f"killed by {signal.Signals(-self.returncode).name}"
        else:
            how = f"exited {self.returncode}"
        tail = self.tail()
        return mask_secrets(f"`{self.command}` {how}" + (f": {tail}" if tail else ""))

    def as_dict(self) -> dict[str, Any]:
        return {"command": mask_secrets(self.command), "returncode": self.returncode,
                "seconds": round(self.seconds, 3), "timed_out": self.timed_out,
                "output_tail": mask_secrets(self.output[-1000:])}


def _load_prctl() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl()


def _preexec(parent: int) -> Any:
    def preexec() -> None:
        if _PRCTL is not None and (_PRCTL(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0
                                   or os.getppid() != parent):
            os._exit(127)

    return preexec


def run_command(command: str, *, cwd: Path | str, timeout: float | None,
                env: Mapping[str, str] | None = None) -> CommandResult:
    """Run ``sh -c command`` in ``cwd`` until it ends or ``timeout`` seconds pass.

    ``env``: added to umbau's environment. Returns a :class:`CommandResult` (never raises
    for the command's own failure); raises OSError when ``sh`` cannot be started or
    ``cwd`` does not exist. Ctrl-C/SIGTERM to umbau kill the group before unwinding.
    """
    started = time.monotonic()
    child = subprocess.Popen(
        ["sh", "-c", command], cwd=str(cwd), env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        process_group=0, preexec_fn=_preexec(os.getpid()))
    watchdog = _start_watchdog(child.pid)
    timed_out = False
    try:
        try:
            out, _ = child.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(child)
            out, _ = child.communicate()
    except BaseException:
        _kill_group(child)
        child.communicate()
        raise
    finally:
        _end_watchdog(watchdog, child)
    text = out[-_TAIL_BYTES:].decode("utf-8", "replace") if out else ""
    return CommandResult(command, child.returncode, time.monotonic() - started, timed_out,
                         text, timeout)


def _kill_group(child: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the command's group, SIGKILL after :data:`GRACE` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + GRACE
    while child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)


def _start_watchdog(pgid: int) -> IO[bytes] | None:
    try:
        guard = subprocess.Popen([sys.executable, "-I", "-c", _WATCHDOG, str(pgid)],
                                 stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, start_new_session=True)
    except OSError:
        return None
    return guard.stdin


def _end_watchdog(pipe: IO[bytes] | None, child: subprocess.Popen[bytes]) -> None:
    """Tell the watchdog the command ended under umbau's eyes; leftovers of the group
    (a daemon the command started and left running) are the command's business."""
    if pipe is None:
        return
    with contextlib.suppress(OSError):
        pipe.write(b"done")
        pipe.close()
