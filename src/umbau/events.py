"""Progress events: the library reports, the CLI renders (``umbau.cli.render.progress``).

The one protocol of every long operation (migrations, backups, copies, backfills, the
demo, ``umbau test``): a function takes ``on_event: EventHandler | None`` and calls
:func:`emit`. A counted operation says how far it is with ``total`` (announced once per
phase) and either one event per unit done (``step_done``, ``backup_table``,
``copy_table``) or ``done`` (units so far, e.g. rows), with ``unit``, ``rate`` (units per
second) and ``eta`` (seconds) when the producer knows them better than the renderer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class Event:
    """Something worth telling the user while a command runs.

    kinds: ``lock_wait``, ``lock_acquired``, ``plan``, ``step_start``, ``step_done``,
    ``step_failed`` (a step that failed for good: ``error`` the message, ``data``
    ``{"error_type": UmbauError class name}``),
    ``retry`` (migrations; ``holder``: the sessions that blocked the attempt),
    ``old_lock_holders`` (a warning before an upgrade), ``blockers_cancelled``,
    ``invalid_index_dropped``; ``backup_start``, ``backup_table``, ``backup_done``,
    ``verify_step``, ``restore_step``, ``copy_step``, ``copy_table``,
    ``backup_before_upgrade``, ``backup_taken``, ``rollback_skipped``,
    ``rollback_restore`` (backups); ``note`` (a remark, e.g. a downgrade step that does
    nothing); ``backfill_progress`` (backfills); ``release_step_done`` (releases:
    ``duration`` in seconds, ``data`` ``{"version", "step", "kind", "outcome"}``); ``stage``
    (a named stage of a longer run, e.g. the demo) and ``result`` (a partial result to
    show now, in ``data``: an object with ``as_dict()`` or plain data).

    Fleets (``umbau.fleet``): ``fleet_progress`` (totals of the whole run) and
    ``fleet_target`` (a line per finished target, any worker's) for display; and, for
    metrics, one ``fleet_target_start`` and then one ``fleet_target_done`` or
    ``fleet_target_failed`` per target that this process's workers handle (so that the
    counts of several machines add up): ``message`` and ``data["target"]`` name the
    target, ``data`` also holds ``run_id``, ``kind`` (``upgrade`` or ``backfill``) and
    ``worker``; done and failed carry ``duration`` (seconds); done its ``revision``
    (after the upgrade) and ``data["steps"]`` (revisions run) or ``data["rows"]``
    (rows a backfill changed); failed its ``error`` and ``data["exit_code"]``.
    """

    kind: str
    revision: str | None = None
    message: str | None = None
    direction: str | None = None
    attempt: int | None = None
    delay: float | None = None
    duration: float | None = None
    waited: float | None = None
    holder: str | None = None
    error: str | None = None
    total: int | None = None
    done: int | None = None
    unit: str | None = None
    rate: float | None = None
    eta: float | None = None
    data: Any = None

    def as_dict(self) -> dict[str, Any]:
        """The fields that are set; ``data`` through its own ``as_dict()`` when it has one."""
        out = {f.name: getattr(self, f.name) for f in fields(self)
               if getattr(self, f.name) is not None and f.name != "data"}
        if self.data is not None:
            out["data"] = self.data.as_dict() if hasattr(self.data, "as_dict") else self.data
        return out


EventHandler = Callable[[Event], None]


def emit(handler: EventHandler | None, event: Event) -> None:
    if handler is not None:
        handler(event)
