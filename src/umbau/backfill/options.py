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
    "max_failed_batches": 0,
    # health-aware throttling: hold batches while the server is under strain
    "max_replica_lag": 30.0,
    "max_transaction_age": 600.0,
    "hold_during_autovacuum": False,
    "health_interval": 1.0,
}
# Durations that may be "off" (None); the others must be given.
_DURATIONS = {"target_duration": False, "pause": True, "lease": False,
              "max_replica_lag": True, "max_transaction_age": True, "health_interval": False}
_MINIMUM = {"max_failed_batches": 0}
_BOOLS = {"hold_during_autovacuum"}


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
    max_failed_batches: int
    max_replica_lag: float | None
    max_transaction_age: float | None
    hold_during_autovacuum: bool
    health_interval: float

    def next_size(self, size: int, duration: float) -> int:
        """Scale the batch towards the target duration: at most x2 or /2 per step."""
        if duration <= 0:
            return size
        factor = min(2.0, max(0.5, self.target_duration / duration))
        return max(self.min_batch_size, min(self.max_batch_size, int(size * factor)))

    @property
    def watches_health(self) -> bool:
        return bool(self.max_replica_lag or self.max_transaction_age
                    or self.hold_during_autovacuum)


def resolve(settings: Settings, backfill: Backfill, **flags: Any) -> Options:
    """The options of one run; ``flags`` (CLI options, None = not given) win over all.

    Raises SettingsError for an unknown key or a bad value.
    """
    section = dict(settings.section("backfill"))
    unknown = set(section) - set(DEFAULTS)
    if unknown:
        raise SettingsError(f"unknown key(s) in [tool.umbau.backfill]: {', '.join(sorted(unknown))}"
                            f" (known: {', '.join(DEFAULTS)})")
    values = {key: _parse(key, _pick(key, default, backfill, section, flags))
              for key, default in DEFAULTS.items()}
    # A small max_batch_size lowers the minimum and the start size with it.
    values["min_batch_size"] = min(values["min_batch_size"], values["max_batch_size"])
    values["batch_size"] = min(max(values["batch_size"], values["min_batch_size"]),
                               values["max_batch_size"])
    return Options(**values)


def _pick(key: str, default: Any, backfill: Backfill, section: dict[str, Any],
          flags: dict[str, Any]) -> Any:
    if flags.get(key) is not None:
        return flags[key]
    own = getattr(backfill, key, None)
    if own is None:
        own = backfill.options.get(key)
    return own if own is not None else section.get(key, default)


def _parse(key: str, value: Any) -> Any:
    if key in _DURATIONS:
        seconds = parse_duration(value, key=f"backfill.{key}", allow_off=_DURATIONS[key])
        return 0.0 if seconds is None and key == "pause" else seconds
    if key in _BOOLS:
        if not isinstance(value, bool):
            raise SettingsError(f"backfill.{key} = {value!r} must be true or false")
        return value
    if value is None:
        return None
    return parse_int(value, key=f"backfill.{key}", minimum=_MINIMUM.get(key, 1))
