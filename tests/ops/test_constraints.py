"""NOT VALID + VALIDATE, set_not_null, per-statement lock-timeout retries."""

from __future__ import annotations

import time

import pytest
from ops_support import OpsProject
from sessions import Background, insert_quickly, locks_of, session, wait_for, waiting_backend

from umbau.commands import migrate
from umbau.errors import MigrationFailed, PartiallyApplied, RetriesExhausted

pytestmark = pytest.mark.db

FK = 'ops.add_foreign_key("fk_docs_owner", "docs", "owners", ["owner_id"], ["id"])'
CONSTRAINTS = ("SELECT conname, convalidated FROM pg_constraint WHERE conrelid = 'docs'::regclass "
               "AND contype <> 'p' ORDER BY 1")


def test_foreign_key_and_check_end_validated(project: OpsProject) -> None:
    project.add("r1", FK + '\nops.add_check("ck_docs_score", "docs", "score >= 0")')
    project.upgrade()
    assert project.rows(CONSTRAINTS) == [("ck_docs_score", True), ("fk_docs_owner", True)]
    migrate.stamp(project.settings(), "r0")
    project.upgrade()  # a rerun finds both and changes nothing


def test_a_rerun_validates_a_constraint_left_not_valid(project: OpsProject) -> None:
    project.execute("ALTER TABLE docs ADD CONSTRAINT fk_docs_owner FOREIGN KEY (owner_id) "
                    "REFERENCES owners (id) NOT VALID")  # what a crash before VALIDATE leaves
    project.add("r1", FK)
    project.upgrade()
    assert project.rows(CONSTRAINTS) == [("fk_docs_owner", True)]


def test_validate_runs_after_the_not_valid_step_committed_and_blocks_no_writer(
        project: OpsProject) -> None:
    # a check that takes 5 ms a row: VALIDATE runs for about 5 s, long enough to look at
    project.execute("CREATE FUNCTION slow_ok(x float) RETURNS boolean LANGUAGE sql "
                    "AS 'SELECT true FROM pg_sleep(0.005)'")
    project.add("r1", 'ops.add_check("ck_docs_slow", "docs", "slow_ok(score)")')
    run = Background(lambda: project.upgrade())
    pid = wait_for(lambda: waiting_backend(project.url, "ALTER TABLE docs VALIDATE",
                                           waiting=False))
    # the NOT VALID step has committed: another session sees it while VALIDATE runs
    assert project.rows(CONSTRAINTS) == [("ck_docs_slow", False)]
    assert locks_of(project.url, pid) == {("ShareUpdateExclusiveLock", True)}
    assert insert_quickly(project.url, 90_002) < 0.5  # a writer goes on
    run.result()
    assert project.rows(CONSTRAINTS) == [("ck_docs_slow", True)]


def test_a_violating_row_fails_validate_and_keeps_the_not_valid_constraint(
        project: OpsProject) -> None:
    project.execute("UPDATE docs SET owner_id = 999 WHERE id = 1")
    project.add("r1", FK, 'op.drop_constraint("fk_docs_owner", "docs", type_="foreignkey")')
    # NOT VALID committed before VALIDATE failed: the runner records the revision as
    # partially applied, and a rerun must be asked for
    with pytest.raises(PartiallyApplied, match="violates foreign key constraint"):
        project.upgrade()
    assert project.rows(CONSTRAINTS) == [("fk_docs_owner", False)]
    project.execute("UPDATE docs SET owner_id = 1 WHERE id = 1")
    with pytest.raises(PartiallyApplied, match="--retry-partial"):
        project.upgrade()
    project.upgrade(retry_partial=True)  # the fix, then a rerun: ops steps are rerunnable
    assert project.rows(CONSTRAINTS) == [("fk_docs_owner", True)]


def test_set_not_null_leaves_no_check_behind(project: OpsProject) -> None:
    project.add("r1", 'ops.set_not_null("docs", "owner_id")')
    project.upgrade()
    assert project.scalar("SELECT attnotnull FROM pg_attribute WHERE attrelid = "
                          "'docs'::regclass AND attname = 'owner_id'") is True
    assert project.rows(CONSTRAINTS) == []


def test_set_not_null_refuses_nulls_and_changes_nothing(project: OpsProject) -> None:
    project.execute("UPDATE docs SET owner_id = NULL WHERE id = 7")
    project.add("r1", 'ops.set_not_null("docs", "owner_id")')
    with pytest.raises(MigrationFailed, match="is violated by some row"):
        project.upgrade()
    assert project.scalar("SELECT attnotnull FROM pg_attribute WHERE attrelid = "
                          "'docs'::regclass AND attname = 'owner_id'") is False


def test_a_lock_timeout_retries_the_statement_not_the_revision(project: OpsProject) -> None:
    project.add("r1", 'ops.set_not_null("docs", "owner_id")')
    with session(project.url, autocommit=False) as blocker:
        blocker.execute("SELECT count(*) FROM docs")  # ACCESS SHARE until rollback
        run = Background(lambda: project.upgrade(flags={
            "lock_timeout": "100ms", "backoff_base": "100ms", "backoff_max": "200ms"}))
        wait_for(lambda: waiting_backend(project.url, "ALTER TABLE docs ADD CONSTRAINT"))
        time.sleep(1.0)  # a few lock timeouts of the ADD CONSTRAINT, each retried
        blocker.rollback()
    result = run.result()
    assert result.retries == 0 and result.steps[0].attempts == 1


def test_retries_are_bounded(project: OpsProject) -> None:
    project.add("r1", 'ops.set_not_null("docs", "owner_id")')
    with session(project.url, autocommit=False) as blocker:
        blocker.execute("SELECT count(*) FROM docs")
        with pytest.raises(RetriesExhausted, match=r"lock timeout .* after 3 attempts"):
            project.upgrade(flags={"lock_timeout": "50ms", "retries": 2,
                                   "backoff_base": "10ms", "backoff_max": "20ms"})
        blocker.rollback()
