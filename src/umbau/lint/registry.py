"""The rule registry: filled by explicit imports in ``rules/__init__.py``; refuses duplicates."""

from __future__ import annotations

import re

from umbau.lint.model import SEVERITIES, Rule

_RULES: dict[str, Rule] = {}
_ID = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


def register(rule: Rule) -> Rule:
    """Add ``rule``; a second rule with the same id, or a malformed id, is a bug."""
    if not _ID.match(rule.id):
        raise ValueError(f"lint rule id {rule.id!r} is not kebab-case")
    if rule.id in _RULES:
        raise ValueError(f"lint rule {rule.id!r} is registered twice")
    if rule.severity not in SEVERITIES:
        raise ValueError(f"lint rule {rule.id!r} has unknown severity {rule.severity!r}")
    _RULES[rule.id] = rule
    return rule


def all_rules() -> dict[str, Rule]:
    """Every registered rule by id, in registration order."""
    import umbau.lint.rules  # noqa: F401 - fills the registry

    return dict(_RULES)
