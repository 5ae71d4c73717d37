"""Per-backfill options: the Backfill's own values win over ``[tool.umbau.backfill]``,
which wins over the defaults."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from umbau.backfill.api import Backfill
from umbau.errors import SettingsError
from umbau.settings import Settings, parse_duration, parse_int

DEFAULTS: dict[str, Any] = {
    "batch_size": 1000,
    "min_batch_size": 100,
    "max_batch_size": 50_000,
    "target_duration": 0.2,
    "pause": 0.0,
    "lease": 60.0,
    "chunks": None,
    "rows_per_chunk": 250_000,
}
_DURATIONS = {"target_duration", "pause", "lease"}


@dataclass(frozen=True)
class Options:
    batch_size: int
    min_batch_size: int
    max_batch_size: int
    target_duration: float
    pause: float
    lease: float
    chunks: int | None
    rows_per_chunk: int

    def next_size(self, size: int, duration: float) -> int:
        """Scale the batch towards the target duration: at most x2 or /2 per step."""
        if duration <= 0:
            return size
        factor = min(2.0, max(0.5, self.target_duration / duration))
        return max(self.min_batch_size, min(self.max_batch_size, int(size * factor)))


def resolve(settings: Settings, backfill: Backfill) -> Options:
    section = dict(settings.section("backfill"))
    unknown = set(section) - set(DEFAULTS)
    if unknown:
        raise SettingsError(f"unknown key(s) in [tool.umbau.backfill]: {', '.join(sorted(unknown))}"
                            f" (known: {', '.join(DEFAULTS)})")
    values: dict[str, Any] = {}
    for key, default in DEFAULTS.items():
        own = getattr(backfill, key, None)
        if own is None:
            own = backfill.options.get(key)
        value = own if own is not None else section.get(key, default)
        if key in _DURATIONS:
            value = parse_duration(value, key=f"backfill.{key}", allow_off=key == "pause") or 0.0
        elif value is not None:
            value = parse_int(value, key=f"backfill.{key}", minimum=1)
        values[key] = value
    # A small max_batch_size lowers the minimum and the start size with it.
    values["min_batch_size"] = min(values["min_batch_size"], values["max_batch_size"])
    values["batch_size"] = min(max(values["batch_size"], values["min_batch_size"]),
                               values["max_batch_size"])
    return Options(**values)
