"""PostgreSQL's client programs (pg_dump, pg_restore, psql) as children of umbau.

Two things every caller needs and gets here, once:

* the libpq connection string and environment for a URL (:func:`conninfo`), with the
  password in ``PGPASSWORD`` so that it never shows in ``ps``;
* children that die with umbau (:func:`spawn`). A pg_dump left behind by a killed umbau
  holds ACCESS SHARE on every table for hours, and a pg_restore left behind commits a
  restore nobody records. On Linux the child asks the kernel for SIGKILL when its parent
  dies (``prctl(PR_SET_PDEATHSIG)``, man 2 prctl); elsewhere a small watchdog process
  holds the read end of a pipe whose write end only umbau has, and kills the child's
  process group when the pipe closes without a word (umbau died, even by ``kill -9``).

:func:`sigterm_as_interrupt` makes SIGTERM (what ``timeout``, systemd, Docker and
Kubernetes send) stop a long operation the way Ctrl-C does: the exception unwinds through
the same cleanup (child stopped, partial file removed, transaction rolled back).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import IO, Any

import psycopg
import sqlalchemy as sa

from umbau.interrupts import sigterm_as_interrupt
from umbau.postgres.connect import normalize_url
from umbau.postgres.errors import describe_error

__all__ = ["sigterm_as_interrupt"]  # re-exported: where the backup modules find it

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

# The watchdog (where PR_SET_PDEATHSIG does not exist): a line "done" means umbau reaped
# the child itself; EOF without it means umbau died, and the child's group is killed.
_WATCHDOG = """
import os, signal, sys
pgid = int(sys.argv[1])
if sys.stdin.buffer.read() != b"done":
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass
"""


def _conninfo_value(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def conninfo(url: str, server_major: int | None = None) -> tuple[str, dict[str, str]]:
    """(libpq conninfo without the password, extra environment with ``PGPASSWORD``).

    Query parameters of the URL become conninfo keywords (libpq docs, "34.1.2. Parameter
    Key Words"); ``?password=`` is moved to the environment with the user part's password.
    On PostgreSQL 14+ (``server_major``), the session checks every second that its
    client is still there (``client_connection_check_interval``, docs "20.3.2"): a backend
    waiting on a lock otherwise outlives a killed pg_dump, holding its ACCESS SHARE locks
    until the lock it waits for is granted. Raises
    :class:`~umbau.errors.SettingsError` for a URL that is not PostgreSQL's.
    """
    parsed = normalize_url(url)
    parts = {k: v if isinstance(v, str) else v[0] for k, v in parsed.query.items()}
    # ?password=… is a libpq parameter too: it must not reach argv either.
    in_query = parts.pop("password", None)
    password = parsed.password or in_query
    for key, value in (("host", parsed.host), ("port", parsed.port),
                       ("user", parsed.username), ("dbname", parsed.database)):
        if value:
            parts[key] = str(value)
    if server_major is not None and server_major >= 14:
        parts["options"] = f"{parts.get('options', '')} {_CHECK_CLIENT}".strip()
    text = " ".join(f"{k}={_conninfo_value(v)}" for k, v in parts.items())
    return text, ({"PGPASSWORD": str(password)} if password else {})


_CHECK_CLIENT = "-c client_connection_check_interval=1000"


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl  # type: ignore[no-any-return,unused-ignore]
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl()


def _die_with(parent: int, prctl: Callable[..., int]) -> Callable[[], None]:
    """The child's first act after fork: SIGKILL when the parent dies. If the parent died
    between fork and prctl, the child is already an orphan and ends itself."""
    def preexec() -> None:
        if prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0 or os.getppid() != parent:
            os._exit(127)

    return preexec


class Child(subprocess.Popen[bytes]):
    """A client program that dies with umbau; :meth:`reap` ends its watchdog (if any)."""

    watchdog: IO[bytes] | None = None

    def reap(self) -> None:
        """Tell the watchdog the child ended under umbau's eyes: it must not kill anything
        (the process group may already belong to someone else)."""
        if self.watchdog is not None:
            try:
                self.watchdog.write(b"done")
                self.watchdog.close()
            except OSError:
                pass
            self.watchdog = None


def spawn(argv: Sequence[str], *, env: Mapping[str, str] | None = None,
          stdin: Any = None, stdout: Any = None, stderr: Any = None,
          watchdog: bool | None = None) -> Child:
    """Start ``argv`` as a child that dies with umbau, with umask 077 (what pg_dump
    creates is private from its first byte) and ``env`` added to umbau's environment.

    ``watchdog`` forces the portable fallback (True) or the prctl path (False); by
    default prctl is used where the kernel has it. The kernel sends PDEATHSIG when the
    *thread* that started the child ends: start a client from the thread that waits for
    it (umbau always does). Raises OSError when ``argv[0]`` cannot be started.
    """
    use_watchdog = _PRCTL is None if watchdog is None else watchdog
    full_env = {**os.environ, **(env or {})}
    if not use_watchdog:
        assert _PRCTL is not None, "PR_SET_PDEATHSIG exists on Linux only"
        return Child(list(argv), stdin=stdin, stdout=stdout, stderr=stderr, env=full_env,
                     umask=0o077, preexec_fn=_die_with(os.getpid(), _PRCTL))
    # Its own process group, so that the watchdog can kill pg_dump's workers with it.
    child = Child(list(argv), stdin=stdin, stdout=stdout, stderr=stderr, env=full_env,
                  umask=0o077, process_group=0)
    child.watchdog = _start_watchdog(child.pid)
    return child


def _start_watchdog(pgid: int) -> IO[bytes]:
    """The watchdog in a session of its own (Ctrl-C and SIGTERM to umbau's group must not
    end it before it did its job); returns the write end of its pipe."""
    guard = subprocess.Popen([sys.executable, "-I", "-c", _WATCHDOG, str(pgid)],
                             stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    assert guard.stdin is not None
    return guard.stdin


def stop(child: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """Terminate ``child`` if it still runs (SIGKILL after ``grace`` seconds) and reap it."""
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    if isinstance(child, Child):
        child.reap()


def run(argv: Sequence[str], *, env: Mapping[str, str] | None = None,
        ) -> tuple[int, str, str]:
    """Run a client with small output to its end: (exit code, stdout, stderr)."""
    child = spawn(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                  stderr=subprocess.PIPE)
    try:
        out, err = child.communicate()
    finally:
        stop(child)
    return (child.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))


@contextmanager
def database_errors(translate: Callable[[str], Exception]) -> Iterator[None]:
    """Errors of either driver in the block (psycopg's own, used on raw connections for
    COPY, and SQLAlchemy's) become ``translate(one line)``, raised ``from`` the original:
    the one place where backup, restore and copy translate them."""
    try:
        yield
    except (psycopg.Error, sa.exc.DBAPIError) as exc:
        raise translate(describe_error(exc)) from exc
