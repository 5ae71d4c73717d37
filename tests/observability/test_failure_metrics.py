"""``step_failed`` from the runner for each way a step fails for good, read back as
``umbau_migration_errors_total`` from the textfile the CLI writes."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import add_revision, linear_project
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from umbau.cli import main
from umbau.errors import EXIT_IRREVERSIBLE, EXIT_MIGRATION
from umbau.postgres.connect import connect

pytestmark = pytest.mark.db


def metrics(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(path.read_text())
            for s in family.samples}


def cli(project: Path, url: str, *args: str) -> int:
    return main(["--config", str(project / "umbau.toml"), "--database-url", url, *args])


def test_retries_exhausted_counts_retries_waits_and_the_error(tmp_path: Path,
                                                              database_url: str) -> None:
    project = linear_project(tmp_path / "p", 1)
    add_revision(project, "r2", "r1", upgrade='op.add_column("t1", sa.Column("x", sa.Integer))')
    assert cli(project, database_url, "upgrade", "r1", "--quiet") == 0
    target = tmp_path / "u.prom"
    with connect(database_url) as blocker:
        blocker.execute(text("LOCK TABLE t1 IN ACCESS SHARE MODE"))
        code = cli(project, database_url, "upgrade", "--lock-timeout", "300ms", "--retries",
                   "2", "--metrics-textfile", str(target))
        blocker.rollback()
    assert code == EXIT_MIGRATION
    got = metrics(target)
    assert got[("umbau_lock_retries_total", ())] == 2
    assert got[("umbau_lock_wait_seconds_count", ())] == 3  # the migrator lock + 2 delays
    assert got[("umbau_migration_errors_total",
                (("error_type", "RetriesExhausted"), ("revision", "r2")))] == 1


def test_an_irreversible_downgrade_is_counted(tmp_path: Path, database_url: str) -> None:
    project = linear_project(tmp_path / "p", 1)
    add_revision(project, "r2", "r1", upgrade='op.add_column("t1", sa.Column("x", sa.Integer))',
                 downgrade='raise NotImplementedError("cannot bring x back")')
    assert cli(project, database_url, "upgrade", "--quiet") == 0
    target = tmp_path / "u.prom"
    assert cli(project, database_url, "downgrade", "r1", "--yes",
               "--metrics-textfile", str(target)) == EXIT_IRREVERSIBLE
    got = metrics(target)
    assert got[("umbau_migration_errors_total",
                (("error_type", "IrreversibleRevision"), ("revision", "r2")))] == 1
    assert got[("umbau_command_exit_code", (("command", "downgrade"),))] == EXIT_IRREVERSIBLE


def test_no_error_series_for_a_refusal_before_any_step(tmp_path: Path,
                                                       database_url: str) -> None:
    project = linear_project(tmp_path / "p", 1)
    target = tmp_path / "u.prom"
    assert cli(project, database_url, "upgrade", "nope", "--metrics-textfile",
               str(target)) == 9
    got = metrics(target)
    assert not [key for key in got if key[0] == "umbau_migration_errors_total"]
    assert got[("umbau_command_exit_code", (("command", "upgrade"),))] == 9
