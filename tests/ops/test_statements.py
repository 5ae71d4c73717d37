"""What each helper emits through Alembic's ``op`` (``--sql``), and what lint says of it."""

from __future__ import annotations

import re

import pytest
from ops_support import OpsProject

from umbau.commands.lint import lint

pytestmark = pytest.mark.db


def statements(sql: str) -> list[str]:
    """The rendered statements, whitespace folded, Alembic's version stamps left out."""
    code = "\n".join(line for line in sql.splitlines() if not line.startswith("--"))
    parts = [" ".join(p.split()) for p in re.split(r";\s*\n", code)]
    return [p for p in parts if p and "alembic_version" not in p]


def rendered(project: OpsProject, upgrade: str) -> list[str]:
    project.add("r1", upgrade)
    return statements(project.sql("r0:r1"))


def test_create_index_is_concurrent_outside_the_transaction(project: OpsProject) -> None:
    out = rendered(project, 'ops.create_index("ix_docs_owner", "docs", ["owner_id", "score"], '
                            'where="score > 0")')
    assert out == ["BEGIN", "COMMIT", "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_docs_owner ON "
                   "docs (owner_id, score) WHERE score > 0", "BEGIN", "COMMIT"]


def test_drop_index_is_concurrent(project: OpsProject) -> None:
    out = rendered(project, 'ops.drop_index("ix_docs_owner", "docs")')
    assert "DROP INDEX CONCURRENTLY IF EXISTS ix_docs_owner" in out
    assert out.index("DROP INDEX CONCURRENTLY IF EXISTS ix_docs_owner") > out.index("COMMIT")


def test_foreign_key_not_valid_then_validate_in_another_transaction(project: OpsProject) -> None:
    out = rendered(project, 'ops.add_foreign_key("fk_docs_owner", "docs", "owners", '
                            '["owner_id"], ["id"], ondelete="CASCADE")')
    assert out[1:5] == [
        "ALTER TABLE docs ADD CONSTRAINT fk_docs_owner FOREIGN KEY(owner_id) REFERENCES owners "
        "(id) ON DELETE CASCADE NOT VALID",
        "COMMIT",
        "ALTER TABLE docs VALIDATE CONSTRAINT fk_docs_owner",
        "BEGIN"]


def test_set_not_null_goes_through_a_validated_check(project: OpsProject) -> None:
    out = rendered(project, 'ops.set_not_null("docs", "owner_id")')
    assert out[1:7] == [
        "ALTER TABLE docs ADD CONSTRAINT docs_owner_id_not_null CHECK (owner_id IS NOT NULL) "
        "NOT VALID",
        "COMMIT",
        "ALTER TABLE docs VALIDATE CONSTRAINT docs_owner_id_not_null",
        "BEGIN",
        "ALTER TABLE docs ALTER COLUMN owner_id SET NOT NULL",
        "ALTER TABLE docs DROP CONSTRAINT docs_owner_id_not_null"]


def test_unique_and_primary_key_use_an_index_built_concurrently(project: OpsProject) -> None:
    out = rendered(project, 'ops.add_unique("uq_docs_code", "docs", ["code"])')
    build = out.index("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS uq_docs_code ON docs (code)")
    assert out[build + 2] == ("ALTER TABLE docs ADD CONSTRAINT uq_docs_code UNIQUE USING INDEX "
                              "uq_docs_code")


def test_rename_column_expand_adds_column_trigger_and_backfill(project: OpsProject) -> None:
    project.add("r1", 'ops.rename_column("docs", "ocr_text", "extracted_text", type_=sa.Text())')
    sql = project.sql("r0:r1")
    out = statements(sql)
    folded = " ".join(sql.split())
    assert out[1] == "ALTER TABLE docs ADD COLUMN extracted_text TEXT"
    assert out[2].startswith("CREATE OR REPLACE FUNCTION umbau_sync_docs_ocr_text_extracted_text()")
    assert ("CREATE TRIGGER umbau_sync_docs_ocr_text_extracted_text BEFORE INSERT OR UPDATE OF "
            "ocr_text, extracted_text ON docs FOR EACH ROW EXECUTE FUNCTION "
            "umbau_sync_docs_ocr_text_extracted_text();") in folded
    assert "-- umbau.ops: backfill umbau_docs_ocr_text_to_extracted_text runs here" in sql


def test_rename_column_offline_needs_the_type(project: OpsProject) -> None:
    from umbau.errors import UsageError

    project.add("r1", 'ops.rename_column("docs", "ocr_text", "extracted_text")')
    with pytest.raises(UsageError, match=r"pass type_="):
        project.sql("r0:r1")


def test_change_type_offline_plain_only_when_it_widens(project: OpsProject) -> None:
    out = rendered(project, 'ops.change_type("docs", "code", sa.String(20), '
                            'existing_type=sa.String(10))\n'
                            'ops.change_type("docs", "score", sa.Numeric(5, 4))')
    assert "ALTER TABLE docs ALTER COLUMN code TYPE VARCHAR(20)" in out
    assert "ALTER TABLE docs ADD COLUMN score_umbau_new NUMERIC(5, 4)" in out
    assert not any("ALTER COLUMN score TYPE" in s for s in out)


def test_contract_drops_trigger_and_old_column(project: OpsProject) -> None:
    project.add("r1", 'ops.rename_column("docs", "ocr_text", "extracted_text", type_=sa.Text())')
    project.add("r2", 'ops.contract_rename_column("docs", "ocr_text", "extracted_text")',
                phase="post")
    out = statements(project.sql("r1:r2"))
    assert out[1:4] == [
        "DROP TRIGGER IF EXISTS umbau_sync_docs_ocr_text_extracted_text ON docs",
        "DROP FUNCTION IF EXISTS umbau_sync_docs_ocr_text_extracted_text()",
        "ALTER TABLE docs DROP COLUMN ocr_text"]


UNSAFE_PLAIN = '''
op.create_index("ix_docs_owner", "docs", ["owner_id"])
op.create_foreign_key("fk_docs_owner", "docs", "owners", ["owner_id"], ["id"])
op.alter_column("docs", "code", nullable=False)
op.alter_column("docs", "score", type_=sa.Numeric(5, 4))
op.alter_column("docs", "ocr_text", new_column_name="extracted_text")
'''
SAFE_OPS = '''
ops.create_index("ix_docs_owner", "docs", ["owner_id"])
ops.add_foreign_key("fk_docs_owner", "docs", "owners", ["owner_id"], ["id"])
ops.set_not_null("docs", "code")
ops.add_unique("uq_docs_code", "docs", ["code"])
ops.change_type("docs", "score", sa.Numeric(5, 4))
ops.rename_column("docs", "ocr_text", "extracted_text", type_=sa.Text())
ops.rename_table("owners", "accounts")
'''
SAFE_OPS_DOWN = '''
ops.revert_rename_table("owners", "accounts")
ops.revert_rename_column("docs", "ocr_text", "extracted_text")
ops.revert_change_type("docs", "score", sa.Float())
op.drop_constraint("uq_docs_code", "docs", type_="unique")
op.alter_column("docs", "code", nullable=True)
op.drop_constraint("fk_docs_owner", "docs", type_="foreignkey")
ops.drop_index("ix_docs_owner")
'''
CONTRACT_DOWN = '''
ops.revert_contract_rename_table("owners", "accounts")
ops.revert_contract_rename_column("docs", "ocr_text", "extracted_text", type_=sa.Text())
ops.revert_contract_change_type("docs", "score", sa.Numeric(5, 4), sa.Float())
'''
CONTRACT = '''
ops.contract_change_type("docs", "score", sa.Numeric(5, 4))
ops.contract_rename_column("docs", "ocr_text", "extracted_text")
ops.contract_rename_table("owners", "accounts")
'''


def test_lint_flags_the_plain_alembic_steps(project: OpsProject) -> None:
    project.add("r1", UNSAFE_PLAIN)
    rules = {f.rule for f in lint(project.settings(), ["r1"]).findings}
    assert {"require-concurrent-index-creation", "foreign-key-not-valid", "set-not-null",
            "alter-column-type", "rename-column"} <= rules


def test_lint_finds_nothing_in_the_same_steps_written_with_ops(project: OpsProject) -> None:
    project.add("r1", SAFE_OPS, SAFE_OPS_DOWN)
    project.add("r2", CONTRACT, CONTRACT_DOWN, phase="post")
    result = lint(project.settings(), ["r1", "r2"])
    assert [(f.rule, f.message) for f in result.findings] == []


def test_lint_still_flags_a_drop_that_no_contract_call_names(project: OpsProject) -> None:
    project.add("r1", 'ops.contract_rename_column("docs", "ocr_text", "extracted_text")\n'
                      'op.drop_column("docs", "code")',
                'op.add_column("docs", sa.Column("code", sa.String(10)))')
    found = [(f.rule, f.message.split(" ")[1]) for f in lint(project.settings(), ["r1"]).findings]
    assert found == [("drop-column", "docs.code")]
