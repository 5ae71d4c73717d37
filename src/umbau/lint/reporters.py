"""Machine formats of a lint result: JSON, GitHub annotations, SARIF 2.1.0, GitLab code quality.

The text for people is drawn with rich in ``umbau.cli.lint``; nothing here renders.
SARIF: OASIS "Static Analysis Results Interchange Format Version 2.1.0" (sections 3.13
run, 3.19 tool, 3.27 result, 3.28 location). GitLab: the "Code Quality report format"
of GitLab's CI documentation (description, check_name, fingerprint, severity, location).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from typing import TYPE_CHECKING, Any

from umbau.lint.model import ERROR, Finding, Rule

if TYPE_CHECKING:
    from umbau.lint.result import LintResult

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
TOOL_URI = "https://github.com/umbau/umbau"


def relative(path: str | None, root: str | None) -> str | None:
    """``path`` relative to the project root (unchanged on another drive, or without root)."""
    if path and root:
        with contextlib.suppress(ValueError):  # another drive on Windows
            return os.path.relpath(path, root)
    return path


def as_json(result: LintResult) -> str:
    return json.dumps(result.as_dict(), indent=2, default=str)


def _escape_data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(value: str) -> str:
    return _escape_data(value).replace(":", "%3A").replace(",", "%2C")


def github(result: LintResult, root: str | None = None) -> str:
    """One ``::error``/``::warning`` workflow command per finding."""
    lines = []
    for finding in result.findings:
        level = "error" if finding.severity == ERROR else "warning"
        props: dict[str, Any] = {"title": f"umbau lint: {finding.rule}"}
        if finding.path:
            props["file"] = relative(finding.path, root)
            if finding.line:
                props["line"] = finding.line
        joined = ",".join(f"{k}={_escape_property(str(v))}" for k, v in props.items())
        lines.append(f"::{level} {joined}::{_escape_data(_body(finding))}")
    lines.append(result.summary())
    return "\n".join(lines)


def _body(finding: Finding) -> str:
    notes = "".join(f"\nnote: {n}" for n in finding.notes)
    return (f"{finding.message}\nlock: {finding.lock} (blocks {finding.blocks}); "
            f"{finding.effect}{notes}\nsafe rewrite:\n{finding.safe}")


def fingerprint(finding: Finding, root: str | None = None) -> str:
    """A stable id of a finding: rule, file, revision and statement (not the line number,
    which moves when lines are added above)."""
    key = "\0".join([finding.rule, relative(finding.path, root) or "", finding.unit,
                     " ".join((finding.sql or finding.message).split())])
    return hashlib.sha256(key.encode()).hexdigest()


def gitlab(result: LintResult, root: str | None = None) -> str:
    """GitLab code quality JSON: a list of issues (``artifacts:reports:codequality``)."""
    issues = []
    for finding in result.findings:
        issues.append({
            "description": f"{finding.rule}: {finding.message}",
            "check_name": finding.rule,
            "fingerprint": fingerprint(finding, root),
            "severity": "critical" if finding.severity == ERROR else "minor",
            "location": {"path": relative(finding.path, root) or finding.unit,
                         "lines": {"begin": finding.line or 1}},
        })
    return json.dumps(issues, indent=2)


def sarif(result: LintResult, rules: dict[str, Rule], version: str,
          root: str | None = None) -> str:
    """SARIF 2.1.0 (GitHub code scanning): one run, the rules that fired, one result each."""
    fired = [rules[r] for r in dict.fromkeys(f.rule for f in result.findings) if r in rules]
    index = {rule.id: i for i, rule in enumerate(fired)}
    driver = {"name": "umbau", "version": version, "informationUri": TOOL_URI,
              "rules": [_sarif_rule(rule) for rule in fired]}
    run = {"tool": {"driver": driver},
           "results": [_sarif_result(f, index, root) for f in result.findings]}
    document = {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}
    return json.dumps(document, indent=2)


def _sarif_rule(rule: Rule) -> dict[str, Any]:
    help_md = f"{rule.problem}\n\nSafe rewrite:\n\n```python\n{rule.safe}\n```"
    return {
        "id": rule.id,
        "name": "".join(part.capitalize() for part in rule.id.split("-")),
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": " ".join(rule.problem.split())},
        "help": {"text": f"{rule.problem}\n\nSafe rewrite:\n{rule.safe}", "markdown": help_md},
        "defaultConfiguration": {"level": _level(rule.severity)},
        "properties": {"lock": rule.lock, "blocks": rule.blocks, "opt_in": rule.opt_in},
    }


def _sarif_result(finding: Finding, index: dict[str, int], root: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ruleId": finding.rule,
        "level": _level(finding.severity),
        "message": {"text": _body(finding)},
        "partialFingerprints": {"umbauFinding/v1": fingerprint(finding, root)},
        "properties": {"revision": finding.unit, "table": finding.table,
                       "table_rows": finding.table_rows, "table_bytes": finding.table_bytes},
    }
    if finding.rule in index:
        out["ruleIndex"] = index[finding.rule]
    if finding.path:
        physical: dict[str, Any] = {"artifactLocation": {"uri": _uri(finding.path, root)}}
        if finding.line:
            physical["region"] = {"startLine": finding.line}
        out["locations"] = [{"physicalLocation": physical}]
    return out


def _uri(path: str, root: str | None) -> str:
    return (relative(path, root) or path).replace(os.sep, "/")


def _level(severity: str) -> str:
    return "error" if severity == ERROR else "warning"
