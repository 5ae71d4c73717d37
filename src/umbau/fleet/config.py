"""Fleet options: ``[tool.umbau.fleet]`` merged with the command's flags (flags win).

::

    [tool.umbau.fleet]
    targets = "fleet.toml"          # or a list of {name, url, tags} tables
    # targets_query = "SELECT name, url FROM tenants"
    # url_template = "postgresql://app@db/{name}"   databases = ["shop_a", "shop_b"]
    control_url = "postgresql://umbau@control/umbau"
    parallel = 4
    canary = 2                      # or ["shop_a"]
    max_failures = 5
    max_failure_rate = 0.05         # or "5%"
    lease = "2min"
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from umbau.errors import SettingsError, UsageError
from umbau.fleet.targets import TargetSource, merge_sources, source_from_settings
from umbau.settings import Settings, parse_duration, parse_int

KNOWN_KEYS = {"targets", "targets_query", "url_template", "databases", "control_url",
              "parallel", "canary", "max_failures", "max_failure_rate", "lease"}


@dataclass(frozen=True)
class FleetOptions:
    """Everything ``fleet upgrade``/``status``/``check`` need besides the Settings.

    ``canary``: target names, or one whole number (the first K targets). ``lease`` in
    seconds. ``max_failure_rate`` is a fraction of the run's targets (0 to 1).
    """

    source: TargetSource = field(default_factory=TargetSource)
    target: str = "head"
    run_id: str | None = None
    worker: bool = False
    parallel: int = 1
    canary: tuple[str, ...] = ()
    max_failures: int | None = None
    max_failure_rate: float | None = None
    tags: tuple[str, ...] = ()
    retry_failed: bool = False
    control_url: str | None = None
    lease: float = 120.0
    allow_unsafe: bool | None = None
    backup: str | None = None
    rollback: str | None = None


def parse_rate(value: Any, *, key: str = "max_failure_rate") -> float:
    """``0.05``, ``"0.05"`` or ``"5%"`` as a fraction between 0 and 1."""
    text = str(value).strip()
    try:
        rate = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise SettingsError(f"{key} = {value!r} is not a rate: use e.g. 0.05 or 5%") from None
    if not 0 <= rate <= 1:
        raise SettingsError(f"{key} = {value!r} must be between 0 and 1 (or 0% and 100%)")
    return rate


def canary_count(canary: Sequence[str]) -> int | None:
    """The K of ``--canary K``, or None when ``canary`` names targets."""
    if len(canary) == 1 and canary[0].isdigit():
        return int(canary[0])
    return None


def _from_section(section: Mapping[str, Any], settings: Settings) -> FleetOptions:
    unknown = set(section) - KNOWN_KEYS
    if unknown:
        raise SettingsError(f"unknown [tool.umbau.fleet] key(s) {', '.join(sorted(unknown))}"
                            f" (known: {', '.join(sorted(KNOWN_KEYS))})")
    canary = section.get("canary", ())
    canary = (str(canary),) if isinstance(canary, int | str) else tuple(str(c) for c in canary)
    rate = section.get("max_failure_rate")
    failures = section.get("max_failures")
    lease = parse_duration(section.get("lease", 120), key="fleet.lease")
    return FleetOptions(
        source=source_from_settings(section, settings.root),
        control_url=section.get("control_url"),
        parallel=parse_int(section.get("parallel", 1), key="fleet.parallel", minimum=1),
        canary=canary,
        max_failures=None if failures is None else parse_int(failures, key="fleet.max_failures"),
        max_failure_rate=None if rate is None else parse_rate(rate, key="fleet.max_failure_rate"),
        lease=lease or 120.0)


def fleet_options(settings: Settings, source: TargetSource | None = None,
                  **flags: Any) -> FleetOptions:
    """``[tool.umbau.fleet]`` with ``flags`` (None means "not given") on top.

    Raises :class:`~umbau.errors.SettingsError` for a bad setting and
    :class:`~umbau.errors.UsageError` for a bad flag.
    """
    base = _from_section(settings.section("fleet"), settings)
    given = {k: v for k, v in flags.items() if v is not None and v != ()}
    if "max_failure_rate" in given:
        given["max_failure_rate"] = parse_rate(given["max_failure_rate"])
    if given.get("parallel", 1) < 1:
        raise UsageError("--parallel must be 1 or more")
    if given.get("max_failures", 0) < 0:
        raise UsageError("--max-failures must be 0 or more")
    merged = merge_sources(source or TargetSource(), base.source)
    return replace(base, source=merged, **given)
