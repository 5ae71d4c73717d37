"""What one lint run found: the linted units, the findings after ignores, and the
touched tables' sizes on the database it was judged for."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from umbau.lint.model import ERROR, WARNING, Finding

if TYPE_CHECKING:  # imported only for a connected lint (it fills ``tables``)
    from umbau.postgres.stats import TableStats


@dataclass
class LintedUnit:
    id: str
    path: str | None
    via: str
    statements: int

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "path": self.path, "via": self.via, "statements": self.statements}


@dataclass
class LintResult:
    """Findings (after ignores), the linted units, and the touched tables' sizes."""

    findings: list[Finding] = field(default_factory=list)
    units: list[LintedUnit] = field(default_factory=list)
    tables: dict[str, TableStats] = field(default_factory=dict)
    target_version: int = 15
    version_from: str = "setting"  # "server" | "setting"
    large_table: int = 0

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == WARNING]

    @property
    def exit_code(self) -> int:
        """1 when any error-level finding remains, else 0."""
        return 1 if self.errors else 0

    def summary(self) -> str:
        return (f"{len(self.units)} revision(s)/file(s) linted: {len(self.errors)} error(s), "
                f"{len(self.warnings)} warning(s)")

    def as_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary(),
            "exit_code": self.exit_code,
            "target_version": self.target_version,
            "version_from": self.version_from,
            "large_table_bytes": self.large_table,
            "units": [u.as_dict() for u in self.units],
            "tables": {k: v.as_dict() for k, v in self.tables.items()},
            "findings": [f.as_dict() for f in self.findings],
        }
