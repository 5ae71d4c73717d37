"""The upgrade gate judges the database it upgrades (issue 10, point 5)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import add_revision, make_project, settings_for
from sqlalchemy import text

from umbau.cli import main
from umbau.commands.lint import check_upgrade
from umbau.commands.migrate import upgrade
from umbau.errors import EXIT_LINT_UNKNOWN, LintUnknown, UnsafeMigration
from umbau.postgres.connect import connect
from umbau.settings import load_settings

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CREATE = ('op.create_table("orders", sa.Column("id", sa.BigInteger, primary_key=True), '
          'sa.Column("shop_id", sa.BigInteger))')
INDEX = 'op.create_index("ix_orders_shop_id", "orders", ["shop_id"])'


def two_step_project(folder: Path) -> Path:
    """r1 creates orders; r2 indexes it without CONCURRENTLY (an error-level finding)."""
    make_project(folder)
    add_revision(folder, "r1", None, upgrade=CREATE, downgrade='op.drop_table("orders")')
    add_revision(folder, "r2", "r1", upgrade=INDEX,
                 downgrade='op.drop_index("ix_orders_shop_id", table_name="orders")')
    return folder


def test_a_table_created_earlier_in_the_same_run_does_not_refuse(
        tmp_path: Path, database_url: str) -> None:
    settings = settings_for(two_step_project(tmp_path), database_url)
    result = check_upgrade(settings, allow_unsafe=False)
    assert result is not None and not result.errors
    finding = next(f for f in result.findings if f.rule == "require-concurrent-index-creation")
    assert finding.severity == "warning"
    assert any("orders does not exist here yet" in n for n in finding.notes)
    assert [s.revision for s in upgrade(settings).steps] == ["r1", "r2"]


def test_a_small_table_warns_with_its_row_count(tmp_path: Path, database_url: str) -> None:
    settings = settings_for(two_step_project(tmp_path), database_url)
    upgrade(settings, "r1")
    with connect(database_url) as conn:
        conn.execute(text("INSERT INTO orders SELECT g, 1 FROM generate_series(1, 42) AS g"))
        conn.commit()
    result = check_upgrade(settings, allow_unsafe=False)
    assert result is not None and not result.errors
    notes = [n for f in result.findings for n in f.notes]
    assert any("orders holds 42 rows here (gate_min_rows 10,000)" in n for n in notes), notes


def test_a_large_table_refuses_naming_table_and_size(tmp_path: Path, database_url: str) -> None:
    settings = settings_for(two_step_project(tmp_path), database_url)
    settings.sections["lint"] = {"gate_min_rows": 40}
    upgrade(settings, "r1")
    with connect(database_url) as conn:
        conn.execute(text("INSERT INTO orders SELECT g, 1 FROM generate_series(1, 42) AS g"))
        conn.commit()
    with pytest.raises(UnsafeMigration, match=r"on orders: at least 40 rows, [\d,]+ bytes"):
        check_upgrade(settings, allow_unsafe=False)
    with connect(database_url) as conn:  # nothing ran
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "r1"


def test_an_unrendered_revision_is_unknown_and_refuses_only_when_strict(
        tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    make_project(tmp_path)
    add_revision(tmp_path, "r1", None,
                 upgrade='op.get_bind().execute(sa.text("SELECT * FROM nowhere")).fetchall()',
                 downgrade='op.execute("SELECT 1")')
    settings = settings_for(tmp_path, database_url)
    result = check_upgrade(settings, allow_unsafe=False)
    assert result is not None and [f.rule for f in result.findings] == ["unrendered-revision"]
    assert result.findings[0].severity == "warning"
    assert "--server URL" in result.findings[0].message
    settings.sections["lint"] = {"gate_strict": True}
    with pytest.raises(LintUnknown, match="could not be linted"):
        check_upgrade(settings, allow_unsafe=False)
    with (tmp_path / "umbau.toml").open("a") as settings_file:
        settings_file.write("\n[tool.umbau.lint]\ngate_strict = true\n")
    monkeypatch.chdir(tmp_path)
    assert main(["--database-url", database_url, "upgrade"]) == EXIT_LINT_UNKNOWN


@pytest.mark.parametrize("example", ["ablage", "etsy_sevdesk"])
def test_every_example_installs_fresh_with_default_settings(example: str,
                                                           database_url: str) -> None:
    settings = load_settings(cwd=EXAMPLES / example, environ={},
                             flags={"database_url": database_url})
    report = upgrade(settings)
    assert report.steps
    with connect(database_url) as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
