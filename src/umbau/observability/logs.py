"""JSON log lines from umbau's events (``--log-format json``), for log shippers.

One line per event, a JSON object: the event's fields (:meth:`umbau.events.Event.as_dict`)
plus ``ts`` (ISO 8601 in UTC, RFC 3339 profile, millisecond precision),
``level`` (``info``, ``warning`` or ``error``), ``logger`` (``umbau``) and ``command``
(e.g. ``upgrade``, ``backfill run``). Passwords are masked (:mod:`umbau.masking`) in the
whole line, ``data`` included.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

from umbau.events import Event, EventHandler
from umbau.masking import mask_secrets

LOGGER = "umbau"

LEVELS = ("info", "warning", "error")
# kinds worth a warning or an error level whatever they carry
WARNING_KINDS = frozenset({"retry", "lock_wait", "old_lock_holders", "blockers_cancelled",
                           "invalid_index_dropped", "rollback_skipped", "rollback_restore",
                           "health_attempt"})
ERROR_KINDS = frozenset({"step_failed", "fleet_target_failed"})
# a release step's outcome (release_step_done's data["outcome"])
ERROR_OUTCOMES = frozenset({"failed", "error", "undo_failed"})
WARNING_OUTCOMES = frozenset({"undone"})
# a stage of a rollback: "rolling back release 1.1.0: …", "rollback: undo 'x'",
# "finishing the rollback of run 3 …", "resuming run 3: … interrupted (rollback)"
_ROLLBACK = re.compile(r"\b(?:rolling back|rolled back|roll back|rollback)\b", re.IGNORECASE)
# a plain stderr line (kind "message") that is a warning or an error
_MESSAGE_LEVEL = re.compile(r"(?:umbau: )?(?P<level>warning|error):", re.IGNORECASE)


def level_of(event: Event) -> str:
    """The level of an event's line, first rule that applies:

    - ``data["level"]`` when a producer sets it (``info``, ``warning``, ``error``);
    - ``error``: ``step_failed``, ``fleet_target_failed``, a release step whose
      ``data["outcome"]`` is ``failed``, ``error`` or ``undo_failed``, a ``fleet_target``
      line of a failed target (``error`` set);
    - ``warning``: lock waits (``lock_wait``, ``old_lock_holders``), retries (``retry``,
      ``health_attempt``), ``blockers_cancelled``, ``invalid_index_dropped``, rollbacks
      (``rollback_skipped``, ``rollback_restore``, a release step ``undone``, a
      ``stage`` of a rollback);
    - a ``message`` line (plain stderr text) starting ``warning:``/``error:`` (or
      ``umbau: warning:``/``umbau: error:``): that level;
    - else ``info``.
    """
    data = event.data if isinstance(event.data, dict) else {}
    if data.get("level") in LEVELS:
        return str(data["level"])
    if event.kind in ERROR_KINDS:
        return "error"
    if event.kind in WARNING_KINDS:
        return "warning"
    outcome = data.get("outcome")
    if outcome in ERROR_OUTCOMES:
        return "error"
    if outcome in WARNING_OUTCOMES:
        return "warning"
    if event.kind == "fleet_target" and event.error:
        return "error"
    if event.kind == "stage" and _ROLLBACK.search(event.message or ""):
        return "warning"
    if event.kind == "message":
        match = _MESSAGE_LEVEL.match((event.message or "").lstrip())
        if match:
            return match["level"].lower()
    return "info"


def timestamp(now: datetime | None = None) -> str:
    """``2026-11-30T19:42:48.123Z``: ISO 8601 / RFC 3339 in UTC."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonLog:
    """An event handler writing one JSON line per event to ``stream`` (default: stderr,
    looked up at each write so a redirected ``sys.stderr`` is honoured).

    ``command``: the command the events belong to (``upgrade``); ``clock``: the time of
    each line (tests pass a fixed one). Lines are written whole under a lock, so events
    from several threads never interleave.
    """

    def __init__(self, command: str = "", stream: TextIO | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.command = command
        self.stream = stream
        self.clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        record = {"ts": timestamp(self.clock()), "level": level_of(event), "logger": LOGGER,
                  "command": self.command, **event.as_dict()}
        self.write(record)

    def error(self, kind: str, exit_code: int, message: str) -> None:
        """The error a command ended with, as one line (``kind`` = ``error``)."""
        self.write({"ts": timestamp(self.clock()), "level": "error", "logger": LOGGER,
                    "command": self.command, "kind": "error",
                    "error": {"type": kind, "exit_code": exit_code, "message": message}})

    def warning(self, message: str) -> None:
        """A warning outside any event (a failed metrics push after the command)."""
        self.write({"ts": timestamp(self.clock()), "level": "warning", "logger": LOGGER,
                    "command": self.command, "kind": "warning", "message": message})

    def write(self, record: dict[str, Any]) -> None:
        line = mask_secrets(json.dumps(record, default=str, ensure_ascii=False))
        stream = self.stream if self.stream is not None else sys.stderr
        with self._lock:
            stream.write(line + "\n")
            stream.flush()


def tee(*handlers: EventHandler | None) -> EventHandler:
    """One handler that passes each event to every given handler, in order."""
    chosen = [h for h in handlers if h is not None]
    if len(chosen) == 1:
        return chosen[0]

    def each(event: Event) -> None:
        for handler in chosen:
            handler(event)

    return each
