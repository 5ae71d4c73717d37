"""What ``umbau test`` found: checks, failures (revision + what differed), timings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from xml.etree import ElementTree as ET

from umbau.testing.verdicts import Irreversible

CHECKS = ("single-head", "upgrade", "stairway", "with-rows", "data", "drift", "idempotent")
CHECK_TITLES = {
    "single-head": "one head",
    "upgrade": "upgrade from empty to head",
    "stairway": "every downgrade reverses its upgrade",
    "with-rows": "every step works on tables that hold rows",
    "data": "rows of untouched tables survive every step",
    "drift": "models match the database at head",
    "idempotent": "a second upgrade head changes nothing",
}


@dataclass(frozen=True)
class Failure:
    """One failed check: where, what, and the difference itself."""

    check: str
    message: str
    revision: str | None = None
    details: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"check": self.check, "revision": self.revision, "message": self.message,
                "details": list(self.details)}

    def describe(self) -> str:
        lines = [f"{self.revision}: {self.message}" if self.revision else self.message]
        lines += [f"    {d}" for d in self.details]
        return "\n".join(lines)


@dataclass
class RevisionTiming:
    revision: str
    message: str
    upgrade_s: float | None = None
    downgrade_s: float | None = None
    reupgrade_s: float | None = None
    lint: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        def r(v: float | None) -> float | None:
            return None if v is None else round(v, 6)

        return {"revision": self.revision, "message": self.message,
                "upgrade_s": r(self.upgrade_s), "downgrade_s": r(self.downgrade_s),
                "reupgrade_s": r(self.reupgrade_s), "lint": self.lint}


@dataclass
class TestReport:
    """The result of ``umbau test``; ``ok`` when no check failed.

    Three kinds of verdict: ``failures`` (defects of the history), ``irreversible``
    (downgrades irreversible by design: listed apart, not failures) and environment
    problems, which stop the run before it starts (MissingExtensions).
    """

    __test__ = False  # not a pytest test class, despite the name

    checks: dict[str, str] = field(default_factory=lambda: dict.fromkeys(CHECKS, "not run"))
    failures: list[Failure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    irreversible: list[Irreversible] = field(default_factory=list)
    revisions: list[RevisionTiming] = field(default_factory=list)
    database: str = ""
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def fail(self, check: str, message: str, revision: str | None = None,
             details: list[str] | tuple[str, ...] = ()) -> None:
        self.failures.append(Failure(check, message, revision, tuple(details)))
        self.checks[check] = "failed"

    def passed(self, check: str) -> None:
        if self.checks.get(check) != "failed":
            self.checks[check] = "passed"

    def skip(self, check: str, reason: str) -> None:
        if self.checks.get(check) in {"not run", None}:
            self.checks[check] = f"skipped: {reason}"

    def failures_of(self, check: str) -> list[Failure]:
        return [f for f in self.failures if f.check == check]

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checks": dict(self.checks),
            "failures": [f.as_dict() for f in self.failures],
            "notes": list(self.notes),
            "irreversible_by_design": [i.as_dict() for i in self.irreversible],
            "revisions": [r.as_dict() for r in self.revisions],
            "database": self.database,
            "duration_s": round(self.duration_s, 3),
        }

    def junit_xml(self) -> str:
        """A JUnit XML document: one test case per check."""
        suite = ET.Element("testsuite", name="umbau test", tests=str(len(self.checks)),
                           failures=str(sum(1 for s in self.checks.values() if s == "failed")),
                           skipped=str(sum(1 for s in self.checks.values()
                                           if s.startswith("skipped") or s == "not run")),
                           time=f"{self.duration_s:.3f}")
        for check, status in self.checks.items():
            case = ET.SubElement(suite, "testcase", classname="umbau", name=check)
            if status == "failed":
                found = self.failures_of(check)
                node = ET.SubElement(case, "failure", message=found[0].describe().splitlines()[0])
                node.text = "\n".join(f.describe() for f in found)
            elif status != "passed":
                ET.SubElement(case, "skipped", message=status)
        return ET.tostring(suite, encoding="unicode", xml_declaration=True)
