"""`umbau upgrade` walks the project once: one Project, env.py run at most twice (the
offline render and the run), at most three server sessions (the plan's, the migrator
lock's, the migration's), with the lint gate and the backup guard on (their defaults)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from helpers import add_revision, linear_project, settings_for

from umbau import alembic_bridge
from umbau.cli import main
from umbau.commands import migrate
from umbau.errors import UnsafeMigration

pytestmark = pytest.mark.db


@pytest.fixture
def counts(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """Counts Project(), env.py runs and psycopg sessions, each by wrapping the real one."""
    seen: Counter[str] = Counter()
    project_init = alembic_bridge.Project.__init__
    run_env = alembic_bridge.run_env
    psycopg_connect = psycopg.connect

    def counting_init(self: Any, *args: Any, **kw: Any) -> None:
        seen["projects"] += 1
        project_init(self, *args, **kw)

    def counting_run_env(*args: Any, **kw: Any) -> Any:
        seen["env_runs"] += 1
        return run_env(*args, **kw)

    def counting_connect(*args: Any, **kw: Any) -> Any:
        seen["sessions"] += 1
        return psycopg_connect(*args, **kw)

    monkeypatch.setattr(alembic_bridge.Project, "__init__", counting_init)
    monkeypatch.setattr(alembic_bridge, "run_env", counting_run_env)
    # SQLAlchemy's psycopg dialect opens every session through psycopg.connect
    monkeypatch.setattr(psycopg, "connect", counting_connect)
    yield seen


def _upgrade(project: Path, url: str, *args: str) -> int:
    return main(["--config", str(project / "umbau.toml"), "--database-url", url, "upgrade",
                 *args])


def test_default_upgrade_walks_the_project_once(tmp_path: Path, database_url: str,
                                                counts: Counter[str],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    project = linear_project(tmp_path, 3)
    assert _upgrade(project, database_url, "r1") == 0
    add_revision(project, "r4", "r3", upgrade='op.add_column("t1", sa.Column("w", sa.Text))',
                 downgrade='op.drop_column("t1", "w")')
    counts.clear()
    assert _upgrade(project, database_url) == 0, capsys.readouterr().err
    assert counts["projects"] == 1, counts
    assert counts["env_runs"] <= 2, counts
    assert counts["sessions"] <= 3, counts


def test_custom_version_table_is_read_through_env_py(tmp_path: Path, database_url: str,
                                                     counts: Counter[str]) -> None:
    """env.py names its own version table: the plan reads the heads through env.py, so
    the gate lints only what is pending (r2's unsafe index was allowed when it ran)."""
    project = linear_project(tmp_path, 1)
    env = project / "migrations" / "env.py"
    env.write_text(env.read_text().replace(
        "        transaction_per_migration=True,",
        '        transaction_per_migration=True,\n        version_table="app_versions",'))
    add_revision(project, "r2", "r1", upgrade='op.create_index("ix_t1_v", "t1", ["v"])',
                 downgrade='op.drop_index("ix_t1_v")')
    add_revision(project, "r3", "r2", upgrade='op.create_table("t3", sa.Column("id", '
                 'sa.BigInteger, primary_key=True))', downgrade='op.drop_table("t3")')
    settings = settings_for(project, database_url)
    # the gate judges the target database: t1 must exist there, and its 0 rows count
    settings = settings.with_overrides(sections={**settings.sections,
                                                 "lint": {"gate_min_rows": 0}})
    migrate.upgrade(settings, "r1")
    with pytest.raises(UnsafeMigration, match="require-concurrent-index-creation"):
        migrate.upgrade(settings, "r2")
    migrate.upgrade(settings, "r2", allow_unsafe=True)
    counts.clear()
    assert migrate.upgrade(settings).after == ("r3",)
    assert counts["projects"] == 1 and counts["sessions"] <= 3, counts
