"""Every rule against its bad and ok cases (tests/lint/cases/<rule-id>/{bad,ok}_*.sql)."""

from __future__ import annotations

from pathlib import Path

import pytest

from umbau.lint import config
from umbau.lint.context import LintContext, Unit
from umbau.lint.docs import render_page
from umbau.lint.engine import lint_units
from umbau.lint.registry import all_rules
from umbau.lint.sources import sql_file_unit

CASES = Path(__file__).parent / "cases"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "rules"
NO_CASES = {"unrendered-revision"}  # needs a revision that cannot be rendered: test_lint.py


def _options(sql: str) -> dict[str, object]:
    """A first line ``-- lint: key=value …`` sets lint options for the case."""
    first = sql.splitlines()[0] if sql else ""
    if not first.startswith("-- lint:"):
        return {}
    out: dict[str, object] = {}
    for pair in first.removeprefix("-- lint:").split():
        key, _, value = pair.partition("=")
        out[key] = int(value) if value.isdigit() else value == "true"
    return out


def _findings(rule_id: str, unit: Unit, **options: object) -> list[str]:
    # what a connected run learns from the server, and the kind of unit, are not settings
    version = options.pop("server_version_num", None)
    if options.pop("revision", False):
        unit.kind = "revision"
    cfg = config.load({"enable": [rule_id], **options})
    ctx = LintContext(cfg.target_version, server_version_num=version)  # type: ignore[arg-type]
    return [f.rule for f in lint_units([unit], cfg, ctx) if f.rule == rule_id]


def _case_id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


@pytest.mark.parametrize("path", sorted(CASES.glob("*/*.sql")), ids=_case_id)
def test_sql_case(path: Path) -> None:
    options = _options(path.read_text())
    unit = sql_file_unit(path, assume_in_transaction=bool(options.get("assume_in_transaction")))
    hits = _findings(path.parent.name, unit, **options)
    if path.name.startswith("bad_"):
        assert hits, f"{path.parent.name} should flag {path.name}"
    else:
        assert not hits, f"{path.parent.name} should not flag {path.name}"


@pytest.mark.parametrize("path", sorted(CASES.glob("*/*.py")), ids=_case_id)
def test_python_case(path: Path) -> None:
    """Rules that read the revision file itself (missing-downgrade)."""
    unit = Unit(id=path.stem, path=str(path), statements=[], source=path.read_text())
    hits = _findings(path.parent.name, unit)
    assert bool(hits) == path.name.startswith("bad_"), path.name


@pytest.mark.parametrize("rule_id", sorted(set(all_rules()) - NO_CASES))
def test_every_rule_has_bad_and_ok_cases(rule_id: str) -> None:
    folder = CASES / rule_id
    assert list(folder.glob("bad_*.*")), f"no bad case for {rule_id}"
    assert list(folder.glob("ok_*.*")), f"no ok case for {rule_id}"


@pytest.mark.parametrize("rule_id", sorted(all_rules()))
def test_every_rule_has_its_docs_page(rule_id: str) -> None:
    page = DOCS / f"{rule_id}.md"
    assert page.is_file(), f"run `python -m umbau.lint.docs docs/rules` to write {page}"
    assert page.read_text() == render_page(all_rules()[rule_id]), (
        f"{page} is out of date: run `python -m umbau.lint.docs docs/rules`")


def test_case_folders_name_real_rules() -> None:
    assert {p.name for p in CASES.iterdir() if p.is_dir()} <= set(all_rules())


# rules whose finding has no name of its own to put into the rewrite
GENERIC_REWRITE = {"missing-downgrade", "commit-outside-autocommit", "unparseable-sql",
                   "unused-ignore", "ignore-needs-reason"}


@pytest.mark.parametrize("path", sorted(p for p in CASES.glob("*/bad_*.sql")
                                         if p.parent.name not in GENERIC_REWRITE), ids=_case_id)
def test_every_finding_has_a_rewrite_of_its_own(path: Path) -> None:
    rule_id = path.parent.name
    options = _options(path.read_text())
    unit = sql_file_unit(path, assume_in_transaction=bool(options.get("assume_in_transaction")))
    version = options.pop("server_version_num", None)
    if options.pop("revision", False):
        unit.kind = "revision"
    cfg = config.load({"enable": [rule_id], **options})
    ctx = LintContext(cfg.target_version, server_version_num=version)  # type: ignore[arg-type]
    found = [f for f in lint_units([unit], cfg, ctx) if f.rule == rule_id]
    assert found and all(f.safe != all_rules()[rule_id].safe for f in found), (
        f"{rule_id}: the safe rewrite of {path.name} is the rule's fixed example")
