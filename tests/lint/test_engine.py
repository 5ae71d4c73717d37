"""The engine without a server: context across units, transactions, ignores, settings."""

from __future__ import annotations

import pytest

from umbau import sql as sqlparse
from umbau.errors import LintRuleError, SettingsError
from umbau.lint import config
from umbau.lint.context import LintStatement, TypeSig, Unit
from umbau.lint.engine import lint_units
from umbau.lint.model import Rule
from umbau.lint.registry import all_rules, register
from umbau.lint.rules.alter_column_type import binary_coercible


def unit(uid: str, sql: str, *, report: bool = True, source: str | None = None,
         lines: list[int] | None = None, in_transaction: bool = True) -> Unit:
    stmts = sqlparse.split(sql)
    return Unit(uid, f"{uid}.py", [
        LintStatement(s.text, s.node, s.error, (lines or [])[i] if lines else None)
        for i, s in enumerate(stmts)], source=source, report=report,
        starts_in_transaction=in_transaction)


def rules_of(units: list[Unit], **options: object) -> list[tuple[str, str]]:
    return [(f.unit, f.rule) for f in lint_units(units, config.load(dict(options)))]


def test_split_keeps_offsets_and_unparseable_statements() -> None:
    sql = "BEGIN;\n-- note\nCREATE INDEX a ON b (c);\nselec 1;\nSELECT 'ä;';"
    stmts = sqlparse.split(sql)
    assert [s.text for s in stmts] == ["BEGIN", "CREATE INDEX a ON b (c)", "selec 1",
                                       "SELECT 'ä;'"]
    assert [sql[s.start:s.start + 6] for s in stmts] == ["BEGIN;", "CREATE", "selec ", "SELECT"]
    assert stmts[2].node is None and "syntax error" in (stmts[2].error or "")


@pytest.mark.parametrize(("old", "new", "safe"), [
    (TypeSig("varchar", (50,)), TypeSig("varchar", (100,)), True),
    (TypeSig("varchar", (50,)), TypeSig("varchar", (20,)), False),
    (TypeSig("varchar", (50,)), TypeSig("text"), True),
    (TypeSig("varchar", (50,)), TypeSig("varchar"), True),
    (TypeSig("numeric", (10, 2)), TypeSig("numeric"), True),
    (TypeSig("numeric", (10, 2)), TypeSig("numeric", (12, 2)), True),
    (TypeSig("numeric", (10, 2)), TypeSig("numeric", (12, 3)), False),
    (TypeSig("int4"), TypeSig("int8"), False),
    (TypeSig("text"), TypeSig("varchar", (10,)), False),
    (TypeSig("timestamp"), TypeSig("timestamptz"), False),
    (TypeSig("cidr"), TypeSig("inet"), True),
])
def test_binary_coercible(old: TypeSig, new: TypeSig, safe: bool) -> None:
    assert binary_coercible(old, new) is safe


def test_type_change_uses_the_old_type_from_earlier_revisions() -> None:
    first = unit("r1", "CREATE TABLE t (a varchar(50), n numeric(10,2), i int)", report=False)
    second = unit("r2", "ALTER TABLE t ALTER COLUMN a TYPE varchar(100);"
                        "ALTER TABLE t ALTER COLUMN a TYPE text;"
                        "ALTER TABLE t ALTER COLUMN n TYPE numeric;"
                        "ALTER TABLE t ALTER COLUMN i TYPE bigint")
    found = lint_units([first, second], config.load({}))
    assert [(f.rule, f.sql) for f in found] == [
        ("alter-column-type", "ALTER TABLE t ALTER COLUMN i TYPE bigint")]
    assert "from int4 to int8" in found[0].message


def test_renamed_columns_keep_their_type() -> None:
    first = unit("r1", "CREATE TABLE t (a varchar(50))", report=False)
    second = unit("r2", "ALTER TABLE t RENAME COLUMN a TO b;", report=False)
    third = unit("r3", "ALTER TABLE t ALTER COLUMN b TYPE varchar(60)")
    assert rules_of([first, second, third]) == []


def test_indexes_and_constraints_on_a_table_of_an_earlier_revision_are_flagged() -> None:
    first = unit("r1", "CREATE TABLE t (a int)")
    second = unit("r2", "CREATE INDEX ix ON t (a); ALTER TABLE t ADD CHECK (a > 0)")
    assert rules_of([first, second]) == [("r2", "require-concurrent-index-creation"),
                                         ("r2", "check-not-valid")]


@pytest.mark.parametrize(("version", "flagged"), [(12, False), (11, True)])
def test_set_not_null_after_validated_check_depends_on_the_version(version: int,
                                                                   flagged: bool) -> None:
    units = [
        unit("r1", "CREATE TABLE t (a int)", report=False),
        unit("r2", "ALTER TABLE t ADD CONSTRAINT c CHECK (a IS NOT NULL) NOT VALID",
             report=False),
        unit("r3", "ALTER TABLE t VALIDATE CONSTRAINT c", report=False),
        unit("r4", "ALTER TABLE t ALTER COLUMN a SET NOT NULL"),
    ]
    assert bool(rules_of(units, target_version=version)) is flagged


def test_each_revision_starts_in_its_own_transaction() -> None:
    units = [
        unit("r1", "CREATE INDEX CONCURRENTLY ix ON t (a)"),
        unit("r2", "COMMIT; CREATE INDEX CONCURRENTLY ix2 ON t (a); BEGIN"),
        unit("r3", "ALTER TABLE o ADD CONSTRAINT fk FOREIGN KEY (a) REFERENCES p (id) NOT VALID"),
        unit("r4", "ALTER TABLE o VALIDATE CONSTRAINT fk"),
    ]
    # r2's manual COMMIT and its rerun hazard are the subject of their own rules
    assert rules_of(units, disable=["commit-outside-autocommit",
                                    "non-idempotent-in-autocommit"]) == [
        ("r1", "concurrently-in-transaction")]


PYTHON = '''\
def upgrade():
    # umbau: ignore[require-concurrent-index-creation] lookup table with 12 rows
    op.create_index("ix_a", "t",
                    ["a"])
    op.drop_column("t", "b")  # umbau: ignore[drop-column] unused since 2.0
    op.drop_column("t", "c")  # umbau: ignore[drop-column]
    # umbau: ignore[drop-table] nothing to see here
    op.add_column("t", sa.Column("d", sa.Text()))


def downgrade():
    op.add_column("t", sa.Column("b", sa.Text()))
'''


def test_ignores_in_a_revision_file() -> None:
    sql = ("CREATE INDEX ix_a ON t (a); ALTER TABLE t DROP COLUMN b; "
           "ALTER TABLE t DROP COLUMN c; ALTER TABLE t ADD COLUMN d text")
    found = lint_units([unit("r1", sql, source=PYTHON, lines=[4, 5, 6, 8])], config.load({}))
    assert sorted((f.rule, f.line) for f in found) == [
        ("drop-column", 6), ("ignore-needs-reason", 6), ("unused-ignore", 7)]


def test_ignore_file_covers_the_whole_file() -> None:
    source = "# umbau: ignore-file[drop-column] contract phase of release 3\n" + PYTHON
    sql = "ALTER TABLE t DROP COLUMN b; ALTER TABLE t DROP COLUMN c"
    found = lint_units([unit("r1", sql, source=source, lines=[6, 7])], config.load(
        {"disable": ["unused-ignore", "ignore-needs-reason"]}))
    assert found == []


def test_settings_enable_disable_and_severity() -> None:
    sql = "CREATE TABLE e (id int PRIMARY KEY); ALTER TABLE x DROP COLUMN y"
    cfg = config.load({"enable": ["prefer-bigint-primary-key"], "disable": ["drop-column"],
                       "severity": {"prefer-bigint-primary-key": "error"}})
    found = lint_units([unit("r1", sql)], cfg)
    assert [(f.rule, f.severity) for f in found] == [("prefer-bigint-primary-key", "error")]


@pytest.mark.parametrize(("section", "fragment"), [
    ({"enable": ["drop-colum"]}, "did you mean 'drop-column'"),
    ({"severity": {"drop-column": "fatal"}}, "use \"error\" or \"warning\""),
    ({"large_tabel": "1GB"}, "did you mean 'large_table'"),
    ({"large_table": "big"}, "is not a size"),
    ({"target_version": "15"}, "give a major version"),
    ({"allow_unsafe": "yes"}, "use true or false"),
])
def test_bad_settings_are_refused(section: dict[str, object], fragment: str) -> None:
    with pytest.raises(SettingsError, match=None) as caught:
        config.load(section)
    assert fragment in str(caught.value)


def test_sizes() -> None:
    assert config.parse_size("100MB") == 100 * 1024**2
    assert config.parse_size("1.5 GB") == int(1.5 * 1024**3)
    assert config.parse_size(4096) == 4096


def test_registry_refuses_duplicates_and_bad_ids() -> None:
    existing = next(iter(all_rules().values()))
    with pytest.raises(LintRuleError, match="registered twice"):
        register(existing)
    bad = Rule(id="Not_Kebab", title="x", lock="", blocks="", effect="", problem="", safe="",
               check=lambda node, ctx: [])
    with pytest.raises(LintRuleError, match="kebab-case"):
        register(bad)


def test_rule_ids_are_stable_kebab_case_and_documented() -> None:
    rules = all_rules()
    assert len(rules) >= 31
    for rule in rules.values():
        assert rule.problem.strip() and rule.safe.strip() and rule.lock and rule.blocks


def test_an_unrendered_revision_can_be_ignored_for_the_whole_file() -> None:
    source = "# umbau: ignore-file[unrendered-revision] reads a table only prod has\n"
    failed = Unit("r1", "r1.py", [], source=source, failure="OperationalError: no table")
    assert lint_units([failed], config.load({})) == []
    failed.source = None
    assert rules_of([failed]) == [("r1", "unrendered-revision")]


def test_an_ignore_of_a_disabled_rule_is_not_reported_unused() -> None:
    source = "def upgrade():\n    op.drop_column('t', 'b')  # umbau: ignore[drop-column] gone\n"
    units = [unit("r1", "CREATE TABLE t (a int)", report=False),
             unit("r2", "ALTER TABLE t ADD COLUMN c int", source=source, lines=[2])]
    assert rules_of(units, disable=["drop-column", "missing-downgrade"]) == []
    assert rules_of(units, disable=["missing-downgrade"]) == [("r2", "unused-ignore")]


def test_a_trailing_ignore_covers_the_whole_call_it_ends() -> None:
    source = ("def upgrade():\n"
              "    op.create_index('ix_a', 't',\n"
              "                    ['a'])  # umbau: ignore[require-concurrent-index-creation] "
              "12 rows\n")
    units = [unit("r1", "CREATE TABLE t (a int)", report=False),
             unit("r2", "CREATE INDEX ix_a ON t (a)", source=source, lines=[2])]
    assert rules_of(units, disable=["missing-downgrade"]) == []
