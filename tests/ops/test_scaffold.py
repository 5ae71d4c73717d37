"""`umbau new --expand`: the expand and the contract revision, written together."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ops_support import OpsProject

from umbau.cli import main
from umbau.commands.lint import lint
from umbau.ops.scaffold import parse_spec

pytestmark = pytest.mark.db


def new(project: OpsProject, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str,
                                                                                        str]:
    code = main(["--config", str(project.path / "umbau.toml"), "--database-url", project.url,
                 "new", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("spec", ["rename docs.ocr_text docs.extracted_text",
                                  "type docs.score numeric(5,4)"])
def test_the_written_revisions_lint_clean_and_run_both_ways(
        project: OpsProject, capsys: pytest.CaptureFixture[str], spec: str) -> None:
    code, out, _ = new(project, capsys, "--expand", spec, "--format", "json")
    assert code == 0
    written = json.loads(out)
    assert written["expand"]["phase"] == "pre" and written["contract"]["phase"] == "post"
    contract_source = Path(written["contract"]["path"]).read_text(encoding="utf-8")
    assert 'phase = "post"' in contract_source
    revisions = [written["expand"]["revision"], written["contract"]["revision"]]
    assert [f.rule for f in lint(project.settings(), revisions).findings] == []
    project.upgrade(phase="pre")
    assert project.scalar("SELECT version_num FROM alembic_version") == revisions[0]
    project.upgrade(phase="post")
    assert project.scalar("SELECT version_num FROM alembic_version") == revisions[1]
    from umbau.commands import migrate

    migrate.downgrade(project.settings(), "r0", yes=True)
    assert project.rows("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE "
                        "attrelid = 'docs'::regclass AND attname IN ('ocr_text', 'score') "
                        "ORDER BY attname") == [("text",), ("double precision",)]


@pytest.mark.parametrize("spec", ["rename docs.ocr_text other.extracted_text",
                                  "drop docs.score", "type score numeric"])
def test_a_bad_spec_says_how_to_write_it(project: OpsProject,
                                         capsys: pytest.CaptureFixture[str], spec: str) -> None:
    code, _, err = new(project, capsys, "--expand", spec)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "rename" in err and list((project.path / "migrations" / "versions").glob("2*")) == []


def test_an_unknown_column_is_refused_before_writing(project: OpsProject,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = new(project, capsys, "--expand", "type docs.nope text")
    assert code == 2 and "no column docs.nope" in err
    assert list((project.path / "migrations" / "versions").glob("2*")) == []


def test_spec_parsing() -> None:
    assert parse_spec("type app.docs.score numeric(5, 4)").new == "numeric(5, 4)"
    assert parse_spec("RENAME docs.a docs.b").table == "docs"
