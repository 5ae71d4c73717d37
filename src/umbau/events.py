"""Progress events: the library reports, the CLI renders."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Event:
    """Something worth telling the user while a command runs.

    kinds: ``lock_wait``, ``lock_acquired``, ``step_start``, ``step_done``,
    ``retry``, ``plan``, ``note``.
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

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


EventHandler = Callable[[Event], None]


def emit(handler: EventHandler | None, event: Event) -> None:
    if handler is not None:
        handler(event)
