"""The example apps' histories: known-dangerous steps are found, safe steps are not."""

from __future__ import annotations

from pathlib import Path

from umbau.commands.lint import lint
from umbau.settings import load_settings

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _findings(example: str, url: str) -> tuple[set[tuple[str, str]], set[str]]:
    settings = load_settings(cwd=EXAMPLES / example, environ={}, flags={"database_url": url})
    result = lint(settings)  # a fresh database: every revision is pending
    return {(f.rule, f.unit) for f in result.findings}, {u.id for u in result.units}


def test_ablage_history(database_url: str) -> None:
    found, linted = _findings("ablage", database_url)
    # creating tables with their indexes, the umbau.ops steps (concurrent index, the
    # expand/contract of the rename and of the type change) and the ignored drop
    for safe in ("5e0a9d3c1b27", "7c2f4e6a8d13", "f6e5d4c3b2a1", "c3d4e5f6a7b8",
                 "a1b2c3d4e5f6", "1f8e2d7c6b5a", "5d2c6b1a0f9e", "3b0a4f9e8d7c",
                 "4c1b5a0f9e8d", "6e3d7c2b1a0f"):
        assert safe in linted, safe
    assert found == set()


def test_etsy_sevdesk_history(database_url: str) -> None:
    found, linted = _findings("etsy_sevdesk", database_url)
    # 1.1.0: FK NOT VALID, CREATE INDEX CONCURRENTLY in autocommit_block, VALIDATE apart
    for safe in ("8d4b1f07c2e9", "a71c9e3d5b48", "f2b87e5d0a39"):
        assert safe in linted
    assert found == set()
