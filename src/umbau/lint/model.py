"""What a rule is, what it reports, and what the engine makes of it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from umbau.lint.context import LintContext, Unit

ERROR = "error"
WARNING = "warning"
SEVERITIES = (ERROR, WARNING)

StatementCheck = Callable[[Any, "LintContext"], Iterable["Hit"]]
UnitCheck = Callable[["Unit", "LintContext"], Iterable["Hit"]]


@dataclass(frozen=True)
class Hit:
    """One thing a rule found in one statement (or unit)."""

    message: str
    table: str | None = None
    lock: str | None = None  # overrides the rule's lock when this case differs
    effect: str | None = None
    line: int | None = None  # only for unit checks, which know their own line
    safe: str | None = None  # the safe rewrite with this finding's own names


@dataclass(frozen=True)
class Rule:
    """A lint rule: stable kebab-case id, what it costs in production, and the safe way.

    ``check`` receives each parsed statement with the context *before* the
    statement runs; ``check_unit`` (instead) receives a whole revision or file.
    ``nodes``: the parse tree classes ``check`` can find something in (it yields nothing
    for any other statement, so the engine does not call it for them); None: every
    statement. A speed-up only: the findings are the same either way.
    """

    id: str
    title: str
    lock: str
    blocks: str
    effect: str
    problem: str
    safe: str
    check: StatementCheck | None = None
    check_unit: UnitCheck | None = None
    severity: str = ERROR
    opt_in: bool = False
    engine: bool = False  # reported by the engine itself (ignores, parse errors)
    nodes: tuple[type, ...] | None = None

    def __post_init__(self) -> None:
        if (self.check is None) == (self.check_unit is None) and not self.engine:
            raise ValueError(f"rule {self.id}: give exactly one of check and check_unit")


@dataclass
class Finding:
    """A rule's hit, placed in its revision or file, with the cost and the safe rewrite."""

    rule: str
    severity: str
    message: str
    unit: str
    path: str | None
    line: int | None
    sql: str | None
    lock: str
    blocks: str
    effect: str
    safe: str
    title: str = ""
    table: str | None = None
    table_rows: int | None = None
    table_bytes: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def location(self) -> str:
        if self.path is None:
            return self.unit
        return f"{self.path}:{self.line}" if self.line else self.path

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "title": self.title,
            "message": self.message,
            "revision": self.unit,
            "path": self.path,
            "line": self.line,
            "sql": self.sql,
            "lock": self.lock,
            "blocks": self.blocks,
            "effect": self.effect,
            "safe_rewrite": self.safe,
            "table": self.table,
            "table_rows": self.table_rows,
            "table_bytes": self.table_bytes,
            "notes": list(self.notes),
        }
