"""Rules the engine reports itself: unparseable SQL and inline ignores gone wrong."""

from __future__ import annotations

from umbau.lint.model import WARNING, Rule

UNPARSEABLE_SQL = Rule(
    id="unparseable-sql",
    title="SQL that PostgreSQL's parser rejects",
    lock="unknown",
    blocks="unknown",
    effect="unknown: no rule could look at the statement",
    problem="""umbau parses the SQL of every revision with PostgreSQL's own parser. A
statement it rejects will most likely fail in production too (a typo, a syntax of a
newer server); in any case no other rule could check it.""",
    safe="""# fix the statement; render it with `umbau upgrade --sql REV-1:REV` to see it
def upgrade():
    op.execute("CREATE INDEX CONCURRENTLY ix_t_a ON t (a)")""",
    severity=WARNING,
    engine=True,
)

UNUSED_IGNORE = Rule(
    id="unused-ignore",
    title="ignore that suppressed nothing",
    lock="none",
    blocks="nothing",
    effect="none",
    problem="""An `# umbau: ignore[rule-id] reason` comment that suppressed no finding is
stale (the statement changed) or wrong (a typo in the rule id, or on the wrong
line). Remove or fix it, so ignores keep meaning something.""",
    safe="""def upgrade():
    # umbau: ignore[drop-column] column unused since release 2.3, backup taken
    op.drop_column("documents", "legacy_ocr_text")""",
    severity=WARNING,
    engine=True,
)

IGNORE_NEEDS_REASON = Rule(
    id="ignore-needs-reason",
    title="ignore without a reason",
    lock="none",
    blocks="nothing",
    effect="the finding it meant to suppress is still reported",
    problem="""Every inline ignore must say why the operation is safe here, after the
brackets: `# umbau: ignore[rule-id] why`. An ignore without a reason suppresses
nothing.""",
    safe="""def upgrade():
    # umbau: ignore[require-concurrent-index-creation] lookup table, 40 rows
    op.create_index("ix_countries_code", "countries", ["code"])""",
    severity=WARNING,
    engine=True,
)

UNRENDERED_REVISION = Rule(
    id="unrendered-revision",
    title="revision whose SQL could not be rendered",
    lock="unknown",
    blocks="unknown",
    effect="unknown: no rule could look at the revision",
    problem="""umbau renders each revision's SQL offline, and runs revisions that need a
live connection (they read data or inspect the schema) on a throwaway copy of the
schema. When both fail — no server to create the scratch database on, or the
revision fails on an empty schema — the revision is reported instead of silently
passing the lint.""",
    safe="""# give umbau a server it may create a scratch database on (database_url), or keep
# reads that need data out of offline paths:
def upgrade():
    bind = op.get_bind()
    if not op.get_context().as_sql:
        rows = bind.execute(sa.text("SELECT id FROM shops")).fetchall()""",
    severity=WARNING,
    engine=True,
)
