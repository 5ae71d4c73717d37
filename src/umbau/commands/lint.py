"""``umbau lint``: the operations that lock, rewrite or break, with a safe rewrite for each."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import text
from sqlalchemy.engine import Connection

from umbau import alembic_bridge as bridge
from umbau.errors import UnsafeMigration, UsageError
from umbau.lint import config as lint_config
from umbau.lint import sources
from umbau.lint.context import Unit, created_table, touched_tables
from umbau.lint.engine import lint_units
from umbau.lint.model import ERROR, WARNING, Finding
from umbau.plan import UpgradePlan, pending_steps, read_heads, read_plan
from umbau.postgres.connect import LOCK_NOT_AVAILABLE, sqlstate
from umbau.settings import Settings


@dataclass(frozen=True)
class TableStats:
    """What the database says about a touched table (estimates from pg_class)."""

    name: str
    exists: bool
    rows: int | None = None
    bytes: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "exists": self.exists, "rows": self.rows, "bytes": self.bytes}


@dataclass
class LintedUnit:
    id: str
    path: str | None
    via: str
    statements: int

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "path": self.path, "via": self.via, "statements": self.statements}


@dataclass
class LintResult:
    """Findings (after ignores), the linted units, and the touched tables' sizes."""

    findings: list[Finding] = field(default_factory=list)
    units: list[LintedUnit] = field(default_factory=list)
    tables: dict[str, TableStats] = field(default_factory=dict)
    target_version: int = 15
    version_from: str = "setting"  # "server" | "setting"
    large_table: int = 0

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == WARNING]

    @property
    def exit_code(self) -> int:
        """1 when any error-level finding remains, else 0."""
        return 1 if self.errors else 0

    def summary(self) -> str:
        return (f"{len(self.units)} revision(s)/file(s) linted: {len(self.errors)} error(s), "
                f"{len(self.warnings)} warning(s)")

    def as_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary(),
            "exit_code": self.exit_code,
            "target_version": self.target_version,
            "version_from": self.version_from,
            "large_table_bytes": self.large_table,
            "units": [u.as_dict() for u in self.units],
            "tables": {k: v.as_dict() for k, v in self.tables.items()},
            "findings": [f.as_dict() for f in self.findings],
        }


def _is_sql_file(target: str) -> bool:
    return target.lower().endswith(".sql")


def lint(
    settings: Settings,
    targets: Sequence[str] = (),
    since: str | None = None,
    *,
    enable: Sequence[str] = (),
    disable: Sequence[str] = (),
    target_version: int | None = None,
    offline: bool = False,
    plan: UpgradePlan | None = None,
) -> LintResult:
    """Lint revisions and/or SQL files.

    ``targets``: revision ids and ``.sql`` paths. With neither targets nor ``since``: the
    revisions not yet applied to the configured database, or all of them without one.
    ``offline=True`` never connects to the configured database (sizes and server
    version are then unknown). ``plan``: an upgrade's plan (``umbau upgrade``'s gate),
    whose project, server version and session are used instead of opening new ones.
    """
    cfg = lint_config.load(_with_switches(settings.section("lint"), enable, disable))
    files = [Path(t) for t in targets if _is_sql_file(t)]
    revisions = [t for t in targets if not _is_sql_file(t)]
    for path in files:
        if not path.is_file():
            raise UsageError(f"{path} does not exist: name an existing .sql file or a revision")
    url = None if offline else settings.database_url
    version, version_from = cfg.target_version, "setting"
    if target_version:
        version, version_from = target_version, "option"
    elif url and plan is not None:
        version, version_from = plan.server_version // 10000, "server"
    elif url:
        version, version_from = _server_major(url), "server"
    cfg = replace(cfg, target_version=version)
    result = LintResult(target_version=version, version_from=version_from,
                        large_table=cfg.large_table)

    units: list[Unit] = []
    if revisions or since or not files:
        units += _revision_units(settings, cfg, revisions, since, url, plan)
    units += [sources.sql_file_unit(p, assume_in_transaction=cfg.assume_in_transaction)
              for p in files]
    findings = lint_units(units, cfg)
    result.units = [LintedUnit(u.id, u.path, u.via, len(u.statements)) for u in units if u.report]
    if url:
        _add_table_stats(result, findings, _touched(units, findings), url, cfg.large_table,
                         plan.connection if plan else None)
    result.findings = findings
    return result


def _with_switches(section: Mapping[str, Any], enable: Sequence[str],
                   disable: Sequence[str]) -> dict[str, Any]:
    """The lint section with this run's --enable/--disable, which win over the settings."""
    out = dict(section)
    base_enable, base_disable = out.get("enable", []), out.get("disable", [])
    if (enable or disable) and isinstance(base_enable, list) and isinstance(base_disable, list):
        # (malformed lists are left as they are, for load() to refuse with its message)
        out["enable"] = [r for r in base_enable if r not in disable] + list(enable)
        out["disable"] = [r for r in base_disable if r not in enable] + list(disable)
    return out


def lint_upgrade(settings: Settings, target: str = "head",
                 plan: UpgradePlan | None = None) -> LintResult:
    """The lint of the revisions an upgrade to ``target`` would run (``umbau upgrade``'s gate).

    ``plan``: the upgrade's plan (``umbau upgrade`` passes its own); read here without one.
    """
    if plan is None:
        from umbau.postgres.connect import connect

        project = bridge.Project(settings, settings.require_database_url())
        with connect(settings.require_database_url()) as conn:
            return lint_upgrade(settings, target, read_plan(project, target, conn))
    if not plan.revisions:
        return LintResult()
    return lint(settings, plan.revisions, plan=plan)


def check_upgrade(settings: Settings, target: str = "head",
                  allow_unsafe: bool | None = None,
                  plan: UpgradePlan | None = None) -> LintResult | None:
    """Refuse (:class:`UnsafeMigration`) when the upgrade has error-level findings.

    ``allow_unsafe=None`` takes ``[tool.umbau.lint] allow_unsafe`` (default false); when
    unsafe steps are allowed nothing is linted and None is returned. ``plan``: the
    upgrade's plan, read once by ``umbau upgrade`` (see :mod:`umbau.plan`).
    """
    if allow_unsafe is None:
        allow_unsafe = allow_unsafe_default(settings)
    if allow_unsafe:
        return None
    result = lint_upgrade(settings, target, plan)
    if result.errors:
        first = result.errors[0]
        raise UnsafeMigration(
            f"{len(result.errors)} error-level lint finding(s) in the pending revisions (first: "
            f"{first.rule} at {first.location}): see `umbau lint`, then fix them, add "
            f"`# umbau: ignore[{first.rule}] <reason>`, or rerun with --allow-unsafe",
            result.errors,
        )
    return result


def allow_unsafe_default(settings: Settings) -> bool:
    """``[tool.umbau.lint] allow_unsafe``: whether upgrade runs despite error findings."""
    return lint_config.load(settings.section("lint")).allow_unsafe


def _server_major(url: str) -> int:
    from umbau.postgres.catalog import server_version
    from umbau.postgres.connect import connect

    with connect(url) as conn:
        return server_version(conn) // 10000


def _selected(project: bridge.Project, settings: Settings, revisions: Sequence[str],
              since: str | None, url: str | None) -> set[str]:
    if revisions:
        return {project.get(r).revision for r in revisions}
    if since:
        start = project.get(since).revision
        return {r for s in project.upgrade_steps((start,), "heads") for r in s.revision.split(",")}
    if url:
        from umbau.postgres.connect import connect

        with connect(url) as conn:
            current = read_heads(project, conn)
        return {r for s in pending_steps(project, current) for r in s.revision.split(",")}
    return {r.revision for r in project.revisions()}


def _revision_units(settings: Settings, cfg: lint_config.LintConfig, revisions: Sequence[str],
                    since: str | None, url: str | None,
                    plan: UpgradePlan | None = None) -> list[Unit]:
    project = plan.project if plan else bridge.Project(settings, url or sources.OFFLINE_URL)
    wanted = _selected(project, settings, revisions, since, url)
    with ExitStack() as stack:
        server: list[str] = []

        def capture(revision: str) -> list[Any]:
            if not server:  # started (embedded) only when a revision needs it
                server.append(stack.enter_context(sources.scratch_server(url)))
            return sources.capture_on_database(settings, server[0], revision)

        rendered = sources.render_history(project, wanted, capture)
    if plan is not None:  # the backup guard judges the same SQL
        plan.sql.update(_offline_sql(rendered))
    units = []
    for info in project.revisions():
        source = Path(info.path).read_text(encoding="utf-8")
        units.append(Unit(
            id=info.revision, path=info.path, source=source, report=info.revision in wanted,
            statements=rendered.statements.get(info.revision, []),
            via=rendered.via.get(info.revision, "failed"),
            failure=rendered.failed.get(info.revision),
        ))
    return units


def _offline_sql(rendered: sources.Rendered) -> dict[str, str]:
    """The SQL text of each revision rendered offline (the ones run on a scratch database
    are left out: their SQL is not what the upgrade will run, only what it ran there)."""
    return {revision: "".join(f"{s.text};\n" for s in statements)
            for revision, statements in rendered.statements.items()
            if rendered.via.get(revision) == "offline"}


_STATS_SQL = (
    "SELECT t.name, c.oid IS NOT NULL, c.reltuples::bigint, "
    "CASE WHEN c.oid IS NULL THEN NULL ELSE {size} END "
    "FROM unnest(CAST(:names AS text[]), CAST(:quoted AS text[])) AS t(name, quoted) "
    "LEFT JOIN pg_class c ON c.oid = to_regclass(t.quoted)"
)
_EXACT_SIZE = "pg_total_relation_size(c.oid)"
_ESTIMATED_SIZE = (
    "(c.relpages::bigint"
    " + COALESCE((SELECT relpages FROM pg_class WHERE oid = c.reltoastrelid), 0)"
    " + COALESCE((SELECT sum(i.relpages) FROM pg_index x JOIN pg_class i"
    " ON i.oid = x.indexrelid WHERE x.indrelid = c.oid), 0))"
    " * current_setting('block_size')::bigint"
)


def _quoted(name: str) -> str:
    return ".".join('"' + part.replace('"', '""') + '"' for part in name.split("."))


def _touched(units: Sequence[Unit], findings: Sequence[Finding]) -> list[str]:
    """The tables the linted units name, except the ones they create themselves (unless a
    finding is about one), and the tables of the findings."""
    named: set[str] = set()
    created: set[str] = set()
    for unit in units:
        if not unit.report:
            continue
        for stmt in unit.statements:
            if stmt.node is None:
                continue
            named |= touched_tables(stmt.node)
            created |= {name for name in [created_table(stmt.node)] if name}
    return sorted((named - created) | {f.table for f in findings if f.table})


def _add_table_stats(result: LintResult, findings: list[Finding], names: list[str], url: str,
                     large_table: int, session: Connection | None = None) -> None:
    from umbau.postgres.connect import connect

    if not names:
        return
    params = {"names": names, "quoted": [_quoted(n) for n in names]}
    with nullcontext(session) if session is not None else connect(url) as conn:
        try:
            # pg_total_relation_size waits for a table's lock: never behind the
            # application's ACCESS EXCLUSIVE for long
            conn.exec_driver_sql("SET LOCAL lock_timeout = '500ms'")
            rows = conn.execute(text(_STATS_SQL.format(size=_EXACT_SIZE)), params).all()
        except sa.exc.OperationalError as exc:
            if sqlstate(exc) != LOCK_NOT_AVAILABLE:
                raise
            conn.rollback()  # the catalog's estimate needs no lock on the table
            rows = conn.execute(text(_STATS_SQL.format(size=_ESTIMATED_SIZE)), params).all()
        conn.rollback()
    for name, exists, tuples, size in rows:
        rows_estimate = int(tuples) if tuples is not None and tuples >= 0 else None
        result.tables[name] = TableStats(name, bool(exists), rows_estimate, size)
    for finding in findings:
        stats = result.tables.get(finding.table or "")
        if stats is None:
            continue
        finding.table_rows, finding.table_bytes = stats.rows, stats.bytes
        if not stats.exists:
            finding.notes.append(f"{stats.name} does not exist in the database yet (an earlier "
                                 "pending revision creates it): harmless on this database, "
                                 "not on one where it holds data")
        elif stats.bytes is not None and stats.bytes > large_table and finding.severity != ERROR:
            finding.severity = ERROR
            finding.notes.append(f"{stats.name} is larger than lint.large_table: raised to error")
