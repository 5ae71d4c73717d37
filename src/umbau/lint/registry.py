"""The rule registry: umbau's ``RULES`` tuple plus the entry point group ``umbau.lint_rules``.

Filled by explicit imports (``umbau.lint.rules.RULES``), never by scanning folders; a
second rule with an id already taken is refused. A package adds its own rules with::

    [project.entry-points."umbau.lint_rules"]
    mycompany = "mycompany.lint:RULES"      # a Rule, or an iterable of Rules
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from importlib.metadata import entry_points

from umbau.errors import LintRuleError
from umbau.lint.model import SEVERITIES, Rule

GROUP = "umbau.lint_rules"
_RULES: dict[str, Rule] = {}
_ID = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


def register(rule: Rule, origin: str = "umbau") -> Rule:
    """Add ``rule``; raise :class:`LintRuleError` (exit 28) for a taken or malformed id."""
    if not isinstance(rule, Rule):
        raise LintRuleError(f"{origin} gives {rule!r}, not an umbau.lint.model.Rule: "
                            "fix the entry point or uninstall the package")
    if not _ID.match(rule.id):
        raise LintRuleError(f"lint rule id {rule.id!r} from {origin} is not kebab-case: "
                            "rename it, e.g. 'ban-drop-column'")
    if rule.id in _RULES:
        raise LintRuleError(f"lint rule {rule.id!r} from {origin} is registered twice (the id "
                            "is taken): give the custom rule another id")
    if rule.severity not in SEVERITIES:
        raise LintRuleError(f"lint rule {rule.id!r} from {origin} has unknown severity "
                            f"{rule.severity!r}: use 'error' or 'warning'")
    _RULES[rule.id] = rule
    return rule


def all_rules() -> dict[str, Rule]:
    """Every rule by id: umbau's in ``RULES`` order, then the installed packages' rules."""
    if not _RULES:
        _fill()
    return dict(_RULES)


def reload() -> dict[str, Rule]:
    """Forget and fill again (after installing a package with rules, and in tests)."""
    _RULES.clear()
    return all_rules()


def _fill() -> None:
    from umbau.lint.rules import RULES

    try:
        for rule in RULES:
            register(rule)
        for point in entry_points(group=GROUP):
            for custom in _as_rules(point.load()):
                register(custom, origin=f"entry point {point.name} ({point.value})")
    except BaseException:
        _RULES.clear()  # never half a registry
        raise


def _as_rules(loaded: object) -> Iterable[Rule]:
    if isinstance(loaded, Rule):
        return [loaded]
    if isinstance(loaded, Iterable) and not isinstance(loaded, str | bytes):
        return list(loaded)
    return [loaded]  # type: ignore[list-item]  # register() refuses it with its name
