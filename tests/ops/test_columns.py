"""ops.add_column (the rewrite probe) and ops.change_type (plain or expand)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from ops_support import OpsProject

from umbau.cli import main
from umbau.errors import EXIT_OPS_REFUSED, OpsRefused

pytestmark = pytest.mark.db

COLUMNS = ("SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute WHERE "
           "attrelid = 'docs'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum")
FILENODE = "SELECT pg_relation_filenode('docs')"
INDEXES = ("SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index "
           "WHERE indrelid = 'docs'::regclass")


def test_a_constant_default_is_added_without_a_rewrite(project: OpsProject) -> None:
    before = project.scalar(FILENODE)
    project.add("r1", 'ops.add_column("docs", sa.Column("flag", sa.Boolean, '
                      'server_default=sa.text("false"), nullable=False))')
    project.upgrade()
    assert project.scalar(FILENODE) == before
    assert project.scalar("SELECT count(*) FROM docs WHERE NOT flag") == 1000


def test_a_volatile_default_on_a_table_with_rows_is_refused(project: OpsProject) -> None:
    project.add("r1", 'ops.add_column("docs", sa.Column("token", sa.Uuid, '
                      'server_default=sa.text("gen_random_uuid()")))')
    with pytest.raises(OpsRefused, match=r"rewrites docs under an ACCESS EXCLUSIVE lock .*"
                                         r"add it nullable without the default"):
        project.upgrade(allow_unsafe=True)  # past lint, which flags it too
    assert "token" not in dict(project.rows(COLUMNS))
    assert project.scalar("SELECT version_num FROM alembic_version") == "r0"
    assert project.scalar("SELECT count(*) FROM pg_class WHERE relname LIKE 'umbau_probe%'") == 0


def test_the_refusal_exits_with_its_code(project: OpsProject,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    project.add("r1", 'ops.add_column("docs", sa.Column("seen", sa.DateTime, '
                      'server_default=sa.text("clock_timestamp()")))')
    code = main(["--config", str(project.path / "umbau.toml"), "--database-url", project.url,
                 "upgrade", "--allow-unsafe"])
    err = capsys.readouterr().err
    assert code == EXIT_OPS_REFUSED == 30
    assert len(err.strip().splitlines()) == 1 and "op.alter_column(server_default=" in err


def test_a_volatile_default_on_an_empty_table_is_fine(project: OpsProject) -> None:
    project.execute("CREATE TABLE empty_docs (id bigint PRIMARY KEY)")
    project.add("r1", 'ops.add_column("empty_docs", sa.Column("token", sa.Uuid, '
                      'server_default=sa.text("gen_random_uuid()")))')
    project.upgrade(allow_unsafe=True)
    assert project.scalar("SELECT count(*) FROM pg_attribute WHERE attrelid = "
                          "'empty_docs'::regclass AND attname = 'token'") == 1


def test_widening_a_varchar_is_a_plain_alter(project: OpsProject) -> None:
    before = project.scalar(FILENODE)
    project.add("r1", 'ops.change_type("docs", "code", sa.String(20))')
    project.upgrade()
    assert dict(project.rows(COLUMNS))["code"] == "character varying(20)"
    assert "code_umbau_new" not in dict(project.rows(COLUMNS))
    assert project.scalar(FILENODE) == before


def test_a_rewriting_change_is_expanded_and_contracted(project: OpsProject) -> None:
    project.execute("CREATE INDEX ix_docs_score ON docs (score) WHERE score IS NOT NULL",
                    "ALTER TABLE docs ALTER COLUMN score SET DEFAULT 0.5")
    before = project.scalar(FILENODE)
    project.add("r1", 'ops.change_type("docs", "score", sa.Numeric(5, 4))',
                'ops.revert_change_type("docs", "score", sa.Float())')
    project.add("r2", 'ops.contract_change_type("docs", "score", sa.Numeric(5, 4))',
                'ops.revert_contract_change_type("docs", "score", sa.Numeric(5, 4), '
                'sa.Float())', phase="post")
    project.upgrade("r1")
    assert dict(project.rows(COLUMNS))["score_umbau_new"] == "numeric(5,4)"
    project.execute("INSERT INTO docs (id, owner_id, score) VALUES (7001, 1, 0.123456)",
                    "UPDATE docs SET score = 0.98765 WHERE id = 3")
    project.upgrade()
    assert dict(project.rows(COLUMNS))["score"] == "numeric(5,4)"
    assert project.scalar(FILENODE) == before  # never rewritten
    assert [str(v) for v, in project.rows("SELECT score FROM docs WHERE id IN (3, 7001) "
                                          "ORDER BY id")] == ["0.9877", "0.1235"]
    assert project.rows("SELECT pg_get_indexdef('ix_docs_score'::regclass)") == [
        ("CREATE INDEX ix_docs_score ON public.docs USING btree (score) "
         "WHERE (score IS NOT NULL)",)]
    assert project.scalar("SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef JOIN "
                          "pg_attribute ON attrelid = adrelid AND attnum = adnum WHERE "
                          "adrelid = 'docs'::regclass AND attname = 'score'") == "0.5"


def test_the_contract_of_a_type_change_goes_down_and_up_again(project: OpsProject) -> None:
    from umbau.commands import migrate

    project.execute("CREATE INDEX ix_docs_score ON docs (score)")
    project.add("r1", 'ops.change_type("docs", "score", sa.Numeric(5, 4))',
                'ops.revert_change_type("docs", "score", sa.Float())')
    project.add("r2", 'ops.contract_change_type("docs", "score", sa.Numeric(5, 4))',
                'ops.revert_contract_change_type("docs", "score", sa.Numeric(5, 4), '
                'sa.Float())', phase="post")
    project.upgrade("r1")
    expanded = (sorted(project.rows(COLUMNS)), sorted(project.rows(INDEXES)))
    project.upgrade()
    migrate.downgrade(project.settings(), "r1", yes=True)
    assert (sorted(project.rows(COLUMNS)), sorted(project.rows(INDEXES))) == expanded
    project.execute("UPDATE docs SET score = 0.25 WHERE id = 5")  # the trigger is back
    assert project.rows("SELECT score_umbau_new FROM docs WHERE id = 5")[0][0] == Decimal("0.25")
    project.upgrade()
    assert dict(project.rows(COLUMNS))["score"] == "numeric(5,4)"
    assert ("ix_docs_score", "CREATE INDEX ix_docs_score ON public.docs USING btree (score)") \
        in project.rows(INDEXES)
