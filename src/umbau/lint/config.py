"""``[tool.umbau.lint]``: which rules run, at what severity, and the thresholds.

::

    [tool.umbau.lint]
    enable = ["prefer-bigint-primary-key"]      # opt-in rules to switch on
    disable = ["rename-column"]                 # rules to switch off
    severity = { drop-column = "warning" }      # per-rule severity
    target_version = 15                         # PostgreSQL major when not connected
    large_table = "100MB"                       # findings on bigger tables become errors
    allow_unsafe = false                        # `umbau upgrade` runs despite errors
    assume_in_transaction = false               # plain .sql files run in one transaction
    gate_min_rows = 10000                       # upgrade gate: smaller tables only warn
    gate_min_size = "0"                         # ... and/or smaller than this size ("0": off)
    gate_strict = false                         # upgrade gate refuses unlintable revisions
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from umbau.errors import SettingsError
from umbau.lint.model import SEVERITIES, Rule
from umbau.lint.registry import all_rules

KEYS = ("enable", "disable", "severity", "target_version", "large_table", "allow_unsafe",
        "assume_in_transaction", "gate_min_rows", "gate_min_size", "gate_strict")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|tb)?\s*$", re.IGNORECASE)
_UNITS = {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3, "tb": 1024**4}


@dataclass(frozen=True)
class LintConfig:
    enabled: frozenset[str]
    severities: Mapping[str, str] = field(default_factory=dict)
    target_version: int = 15
    large_table: int = 100 * 1024**2
    allow_unsafe: bool = False
    assume_in_transaction: bool = False
    gate_min_rows: int = 10_000
    gate_min_size: int = 0  # bytes; 0: rows alone decide
    gate_strict: bool = False

    def rules(self) -> list[Rule]:
        return [rule for rule_id, rule in all_rules().items() if rule_id in self.enabled]

    def severity(self, rule: Rule) -> str:
        return self.severities.get(rule.id, rule.severity)


def parse_size(value: Any, key: str = "large_table") -> int:
    """``"100MB"``, ``"2GB"`` or a number of bytes."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    match = _SIZE.match(str(value))
    if not match or isinstance(value, bool):
        raise SettingsError(f"lint.{key} = {value!r} is not a size: use e.g. '100MB' or '2GB'")
    return int(float(match.group(1)) * _UNITS[(match.group(2) or "b").lower()])


def _rule_ids(value: Any, key: str) -> set[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SettingsError(f"lint.{key} must be a list of rule ids, e.g. [\"drop-column\"]")
    known = all_rules()
    for rule_id in value:
        if rule_id not in known:
            close = difflib.get_close_matches(rule_id, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ": see `umbau lint --list-rules`"
            raise SettingsError(f"unknown lint rule {rule_id!r} in lint.{key}{hint}")
    return set(value)


def load(section: Mapping[str, Any], **overrides: Any) -> LintConfig:
    """The lint configuration from ``settings.section("lint")``; ``overrides`` win."""
    raw = {**section, **{k: v for k, v in overrides.items() if v is not None}}
    for key in raw:
        if key not in KEYS:
            close = difflib.get_close_matches(key, KEYS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(KEYS)})"
            raise SettingsError(f"unknown setting lint.{key}{hint}")
    rules = all_rules()
    enabled = {r.id for r in rules.values() if not r.opt_in}
    enabled |= _rule_ids(raw.get("enable", []), "enable")
    enabled -= _rule_ids(raw.get("disable", []), "disable")
    severities = raw.get("severity", {})
    if not isinstance(severities, Mapping):
        raise SettingsError("lint.severity must be a table, e.g. { drop-column = \"warning\" }")
    _rule_ids(list(severities), "severity")
    for rule_id, level in severities.items():
        if level not in SEVERITIES:
            raise SettingsError(f"lint.severity.{rule_id} = {level!r}: use \"error\" or "
                                "\"warning\" (switch a rule off with lint.disable)")
    version = raw.get("target_version", 15)
    if not isinstance(version, int) or isinstance(version, bool) or not 9 <= version <= 99:
        raise SettingsError(f"lint.target_version = {version!r}: give a major version, e.g. 15")
    return LintConfig(
        enabled=frozenset(enabled),
        severities=dict(severities),
        target_version=version,
        large_table=parse_size(raw.get("large_table", 100 * 1024**2)),
        allow_unsafe=_flag(raw, "allow_unsafe"),
        assume_in_transaction=_flag(raw, "assume_in_transaction"),
        gate_min_rows=_count(raw.get("gate_min_rows", 10_000), "gate_min_rows"),
        gate_min_size=parse_size(raw.get("gate_min_size", 0), "gate_min_size"),
        gate_strict=_flag(raw, "gate_strict"),
    )


def _count(value: Any, key: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise SettingsError(f"lint.{key} = {value!r}: give a whole number of rows, e.g. 10000")
    return value


def _flag(raw: Mapping[str, Any], key: str) -> bool:
    value = raw.get(key, False)
    if not isinstance(value, bool):
        raise SettingsError(f"lint.{key} = {value!r}: use true or false")
    return value
