"""SIGTERM as an interrupt: what ``timeout``, systemd, Docker and Kubernetes send stops a
long operation the way Ctrl-C does, through the same cleanup.

A module of its own, with nothing but the standard library below it, so that the CLI
installs the handler before any command without importing a database driver (``umbau
--help`` and an offline ``umbau lint`` never need psycopg or SQLAlchemy).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from umbau.errors import Terminated


@contextmanager
def sigterm_as_interrupt(what: str) -> Iterator[None]:
    """For the block, SIGTERM raises :class:`~umbau.errors.Terminated` (a
    KeyboardInterrupt) in the main thread, so it unwinds like Ctrl-C; ``what`` says what
    was left behind, for the one line the CLI prints. Further SIGTERMs during the unwind
    are ignored: the cleanup must finish. Outside the main thread it does nothing (Python
    runs signal handlers there only), nor under a handler marked ``umbau_graceful``
    (one that lets the work in progress finish)."""
    if threading.current_thread() is not threading.main_thread() or getattr(
            signal.getsignal(signal.SIGTERM), "umbau_graceful", False):
        # an outer handler stops gracefully (a fleet lets its running target finish)
        yield
        return
    fired: list[bool] = []

    def handler(signum: int, frame: object) -> None:
        if not fired:
            fired.append(True)
            raise Terminated(f"terminated (SIGTERM): {what}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
