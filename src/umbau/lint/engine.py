"""The engine: runs the rules over units in history order, then applies the ignores."""

from __future__ import annotations

from collections.abc import Iterable

from umbau.lint import suppressions
from umbau.lint.config import LintConfig
from umbau.lint.context import LintContext, LintStatement, Unit
from umbau.lint.model import Finding, Hit, Rule
from umbau.lint.registry import all_rules

UNPARSEABLE = "unparseable-sql"
UNRENDERED = "unrendered-revision"
UNUSED_IGNORE = "unused-ignore"
IGNORE_NEEDS_REASON = "ignore-needs-reason"


def lint_units(units: Iterable[Unit], config: LintConfig,
               context: LintContext | None = None) -> list[Finding]:
    """Findings of every unit with ``report=True``; the others only feed the context."""
    ctx = context or LintContext(config.target_version)
    rules = config.rules()
    statement_rules = [r for r in rules if r.check is not None]
    unit_rules = [r for r in rules if r.check_unit is not None]
    by_kind: dict[type, list[Rule]] = {}  # the rules that look at a statement class
    findings: list[Finding] = []
    for unit in units:
        ctx.begin_unit(unit)
        found: list[Finding] = []
        for stmt in unit.statements:
            if stmt.node is None:
                if unit.report:
                    found.extend(_unparseable(unit, stmt, config))
                continue
            if unit.report:
                ctx.statement = stmt
                kind = type(stmt.node)
                chosen = by_kind.get(kind)
                if chosen is None:  # in the rules' order, so the findings' order is kept
                    chosen = by_kind[kind] = [r for r in statement_rules
                                              if r.nodes is None or issubclass(kind, r.nodes)]
                for rule in chosen:
                    for hit in rule.check(stmt.node, ctx):  # type: ignore[misc]
                        found.append(make_finding(rule, hit, unit, stmt, config))
            ctx.apply(stmt.node)
        if unit.report:
            found.extend(_unrendered(unit, config))
            for rule in unit_rules:
                for hit in rule.check_unit(unit, ctx):  # type: ignore[misc]
                    found.append(make_finding(rule, hit, unit, None, config))
            findings.extend(apply_ignores(unit, found, config))
    return findings


def make_finding(rule: Rule, hit: Hit, unit: Unit, stmt: LintStatement | None,
                 config: LintConfig) -> Finding:
    where = "" if unit.direction == "upgrade" else " (downgrade)"
    return Finding(
        rule=rule.id,
        severity=config.severity(rule),
        message=hit.message + where,
        title=rule.title,
        unit=unit.id,
        path=unit.path,
        line=hit.line if stmt is None else stmt.line,
        sql=None if stmt is None else stmt.text,
        lock=hit.lock or rule.lock,
        blocks=rule.blocks,
        effect=hit.effect or rule.effect,
        safe=hit.safe or rule.safe,
        table=hit.table,
    )


def _unparseable(unit: Unit, stmt: LintStatement, config: LintConfig) -> list[Finding]:
    rules = all_rules()
    if UNPARSEABLE not in config.enabled:
        return []
    hit = Hit(f"PostgreSQL's parser rejects this statement ({stmt.error}): fix the SQL, or "
              "check it by hand since no rule could look at it")
    return [make_finding(rules[UNPARSEABLE], hit, unit, stmt, config)]


def _unrendered(unit: Unit, config: LintConfig) -> list[Finding]:
    if unit.failure is None or UNRENDERED not in config.enabled:
        return []
    hit = Hit(f"the SQL of {unit.id} could not be rendered offline nor captured on a throwaway "
              f"database ({unit.failure}): check it by hand; if it needs a server with an "
              "extension or objects no revision creates, rerun with `umbau lint --server URL` "
              "(a server umbau may create a throwaway database on) and/or `--setup "
              "module:function` (run there before the history)")
    return [make_finding(all_rules()[UNRENDERED], hit, unit, None, config)]


def apply_ignores(unit: Unit, found: list[Finding], config: LintConfig) -> list[Finding]:
    """Drop the findings an ignore covers; report ignores that are unused or lack a reason."""
    if not unit.source or "umbau:" not in unit.source:
        return found  # no ignore in the file: spare the parse of the file
    spans = _statement_spans(unit) if unit.kind == "file" else []
    ignores = suppressions.parse(unit.source, unit.kind, spans, unit.python_tree())
    kept: list[Finding] = []
    for finding in found:
        covering = [i for i in ignores if i.reason and i.covers(finding.rule, finding.line)]
        for ignore in covering:
            ignore.used = True
        if not covering:
            kept.append(finding)
    rules = all_rules()
    for ignore in ignores:
        ids = ", ".join(ignore.rules)
        if not ignore.reason:
            rule, message = rules[IGNORE_NEEDS_REASON], (
                f"ignore[{ids}] gives no reason and suppresses nothing: add why it is safe "
                "after the brackets")
        elif not ignore.used and not _all_switched_off(ignore.rules, config):
            rule, message = rules[UNUSED_IGNORE], (
                f"ignore[{ids}] suppressed nothing: remove it (or fix the rule id)")
        else:
            continue
        if rule.id in config.enabled:
            kept.append(make_finding(rule, Hit(message, line=ignore.line), unit, None, config))
    return kept


def _all_switched_off(rule_ids: tuple[str, ...], config: LintConfig) -> bool:
    """True when every id names a known rule that is disabled (its ignore is not stale)."""
    known = all_rules()
    return bool(rule_ids) and all(r in known and r not in config.enabled for r in rule_ids)


def _statement_spans(unit: Unit) -> list[tuple[int, int]]:
    spans = []
    for stmt in unit.statements:
        if stmt.line is not None:
            spans.append((stmt.line, stmt.line + stmt.text.count("\n")))
    return spans
