"""ops.create_index / drop_index / add_unique / add_primary_key on a real server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from ops_support import OpsProject
from sessions import (
    Background,
    insert_quickly,
    locks_of,
    open_write,
    session,
    wait_for,
    waiting_backend,
)

from umbau.commands import migrate
from umbau.errors import MigrationFailed

pytestmark = pytest.mark.db

INDEX = 'ops.create_index("ix_docs_owner", "docs", ["owner_id"])'
DROP = 'ops.drop_index("ix_docs_owner", "docs")'
STATE = ("SELECT indisvalid, indisunique FROM pg_index "
         "WHERE indexrelid = to_regclass('ix_docs_owner')")


def test_builds_a_valid_index_and_a_rerun_keeps_it(project: OpsProject) -> None:
    project.add("r1", INDEX, DROP)
    project.upgrade()
    assert project.rows(STATE) == [(True, False)]
    migrate.stamp(project.settings(), "r0")  # as if the version stamp had been lost
    project.upgrade()
    assert project.rows(STATE) == [(True, False)]
    migrate.downgrade(project.settings(), "r0", yes=True)
    assert project.rows(STATE) == []


def test_an_invalid_leftover_of_the_same_name_is_dropped_first(project: OpsProject) -> None:
    with session(project.url) as conn, pytest.raises(Exception, match="could not create unique"):
        conn.execute("CREATE UNIQUE INDEX CONCURRENTLY ix_docs_owner ON docs (owner_id)")
    assert project.rows(STATE) == [(False, True)]  # what a failed build leaves behind
    project.add("r1", INDEX, DROP)
    project.upgrade()
    assert project.rows(STATE) == [(True, False)]


def test_a_failed_unique_build_leaves_no_invalid_index(project: OpsProject) -> None:
    project.add("r1", 'ops.add_unique("uq_docs_owner", "docs", ["owner_id"])',
                'op.drop_constraint("uq_docs_owner", "docs", type_="unique")')
    with pytest.raises(MigrationFailed, match="could not create unique index"):
        project.upgrade()
    assert project.rows("SELECT 1 FROM pg_class WHERE relname = 'uq_docs_owner'") == []


def test_unique_and_primary_key_attach_the_concurrent_index(project: OpsProject) -> None:
    project.execute("CREATE TABLE tags (name text, slug text)",
                    "INSERT INTO tags SELECT 't' || g, 's' || g FROM generate_series(1, 50) g")
    project.add("r1", 'ops.add_primary_key("tags_pkey", "tags", ["name"])\n'
                      'ops.add_unique("uq_tags_slug", "tags", ["slug"])')
    project.upgrade()
    assert project.rows("SELECT conname, contype, convalidated FROM pg_constraint WHERE "
                        "conrelid = 'tags'::regclass ORDER BY 1") == [
        ("tags_pkey", "p", True), ("uq_tags_slug", "u", True)]
    migrate.stamp(project.settings(), "r0")
    project.upgrade()  # a rerun finds both attached


def test_the_build_takes_share_update_exclusive_and_writes_go_on(project: OpsProject) -> None:
    project.add("r1", INDEX, DROP)
    with open_write(project.url) as blocker:
        run = Background(lambda: project.upgrade(flags={"lock_timeout": "30s"}))
        pid = wait_for(lambda: waiting_backend(project.url, "CREATE INDEX CONCURRENTLY"))
        held = locks_of(project.url, pid)
        assert ("ShareUpdateExclusiveLock", True) in held
        assert not {m for m, granted in held if granted} & {
            "ShareLock", "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock"}
        assert insert_quickly(project.url, 90_001) < 0.5  # a writer is not blocked
        blocker.rollback()
    run.result()
    assert project.rows(STATE) == [(True, False)]


def test_a_lock_timeout_during_the_build_drops_the_leftover_and_builds_again(
        project: OpsProject) -> None:
    project.add("r1", INDEX, DROP)
    with open_write(project.url) as blocker:
        run = Background(lambda: project.upgrade(flags={
            "lock_timeout": "200ms", "backoff_base": "100ms", "backoff_max": "300ms"}))
        wait_for(lambda: project.rows("SELECT 1 FROM pg_index WHERE indexrelid = "
                                      "to_regclass('ix_docs_owner') AND NOT indisvalid"))
        blocker.rollback()
    result = run.result()
    assert result.steps[0].attempts == 1 and result.retries == 0  # retried inside the step
    assert project.rows(STATE) == [(True, False)]


def umbau_cli(project: OpsProject, *args: str) -> list[str]:
    exe = str(Path(sys.executable).with_name("umbau"))
    return [exe, "--config", str(project.path / "umbau.toml"), "--database-url", project.url,
            *args]


@pytest.mark.slow
def test_kill_9_during_the_build_then_rerun_completes(project: OpsProject) -> None:
    project.add("r1", INDEX, DROP)
    with open_write(project.url) as blocker:
        proc = subprocess.Popen(umbau_cli(project, "--lock-timeout", "60s", "upgrade", "-q"),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        pid = wait_for(lambda: waiting_backend(project.url, "CREATE INDEX CONCURRENTLY"))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        # The server notices the vanished client (client_connection_check_interval) and
        # ends the build, leaving the invalid index PostgreSQL leaves behind.
        wait_for(lambda: not project.rows("SELECT 1 FROM pg_stat_activity WHERE pid = :pid",
                                          pid=pid))
        blocker.rollback()
    assert project.rows(STATE) == [(False, False)]
    assert project.scalar("SELECT version_num FROM alembic_version") == "r0"
    result = project.upgrade()
    assert [s.revision for s in result.steps] == ["r1"]
    assert project.rows(STATE) == [(True, False)]
    assert project.scalar("SELECT count(*) FROM pg_index WHERE NOT indisvalid") == 0
