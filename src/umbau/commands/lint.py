"""``umbau lint``: the operations that lock, rewrite or break, with a safe rewrite for each."""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from umbau import alembic_bridge as bridge
from umbau.errors import LintUnknown, UnsafeMigration, UsageError
from umbau.lint import config as lint_config
from umbau.lint import sources
from umbau.lint.context import LintContext, Unit, created_table, touched_tables
from umbau.lint.engine import UNRENDERED, lint_units
from umbau.lint.model import ERROR, WARNING, Finding
from umbau.lint.result import LintedUnit, LintResult
from umbau.settings import Settings

if TYPE_CHECKING:  # the connected paths import these when they run (an offline lint never)
    from sqlalchemy.engine import Connection

    from umbau.plan import UpgradePlan
    from umbau.postgres.stats import TableStats

__all__ = ["LintResult", "TableStats", "check_upgrade", "gate", "lint", "lint_upgrade"]


def __getattr__(name: str) -> Any:
    """``TableStats`` on first use: importing it pulls the connected-lint modules in."""
    if name == "TableStats":
        from umbau.postgres.stats import TableStats

        return TableStats
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    downgrade: bool = False,
    server_url: str | None = None,
    setup: str | None = None,
    plan: UpgradePlan | None = None,
) -> LintResult:
    """Lint revisions and/or SQL files.

    ``targets``: revision ids and ``.sql`` paths. With neither targets nor ``since``: the
    revisions not yet applied to the configured database, or all of them without one.
    ``offline=True`` never connects to the configured database (sizes, server version
    and function volatility are then unknown). ``downgrade=True`` also lints the
    downgrade path of the selected revisions. Revisions that need a connection are run
    on a throwaway database on ``server_url``, else on the configured database's
    server, else on an embedded PostgreSQL; ``setup`` (``file.sql`` or
    ``module:function``) runs there first. ``plan``: an upgrade's plan (``umbau
    upgrade``'s gate), whose project and session are used instead of opening new ones.
    Raises :class:`UsageError` for a missing ``.sql`` file and :class:`SettingsError` for
    bad ``[tool.umbau.lint]`` values.
    """
    cfg = lint_config.load(_with_switches(settings.section("lint"), enable, disable))
    files = [Path(t) for t in targets if _is_sql_file(t)]
    revisions = [t for t in targets if not _is_sql_file(t)]
    for path in files:
        if not path.is_file():
            raise UsageError(f"{path} does not exist: name an existing .sql file or a revision")
    url = None if offline else settings.database_url
    session = plan.connection if plan else None
    live = _server_facts(url, session)
    version, version_from = cfg.target_version, "setting"
    if target_version:
        version, version_from = target_version, "option"
    elif live is not None:
        version, version_from = live[0] // 10000, "server"
    cfg = replace(cfg, target_version=version)
    result = LintResult(target_version=version, version_from=version_from,
                        large_table=cfg.large_table)

    units: list[Unit] = []
    with _collector_paused():
        if revisions or since or not files:
            capture = sources.Capture(settings, server_url or url, _setup_hook(settings, setup))
            units += _revision_units(settings, revisions, since, url, capture, downgrade, plan)
        units += [sources.sql_file_unit(p, assume_in_transaction=cfg.assume_in_transaction)
                  for p in files]
        context = LintContext(version, server_version_num=live[0] if live else None,
                              functions=live[1] if live else None)
        findings = lint_units(units, cfg, context)
    result.units = [LintedUnit(u.id, u.path, u.via, len(u.statements)) for u in units if u.report]
    if url:
        _add_table_stats(result, findings, _touched(units, findings), url, cfg, session)
    result.findings = findings
    return result


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while the history is rendered, parsed and
    linted, and restore it after.

    The work creates millions of objects that stay alive until the rules are done (the
    loaded revision modules, the parse trees); each full pass of the collector walks all
    of them again and finds next to nothing (at 2,000 synthetic revisions: 3 full passes
    cost 0.3-0.8 s CPU of ~3 s and freed 5,520 objects; paused, the peak memory grows by
    16 MB). Reference counting still frees everything that is not in a cycle; the cycles
    are collected by the first pass after the lint.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            _enable_collector()


def _enable_collector() -> None:
    """Switch the collector on without a pass over everything the lint allocated: enabled
    as it is, the next allocation would start a young-generation pass over all of it (0.15
    s at 2,000 revisions). Frozen first, the lint's objects go back into the oldest
    generation, examined at the next full pass like any long-lived object."""
    if gc.get_freeze_count():  # the caller froze objects of its own: leave them frozen
        gc.enable()
        return
    gc.freeze()
    gc.enable()
    gc.unfreeze()


def _server_facts(url: str | None, session: Connection | None = None,
                  ) -> tuple[int, dict[str, str]] | None:
    """(server_version_num, function volatility) of the configured server, or None;
    asked on ``session`` when given (the upgrade plan's), else on a new connection."""
    if not url:
        return None
    from umbau.postgres import stats
    from umbau.postgres.connect import connect

    with nullcontext(session) if session is not None else connect(url) as conn:
        return stats.server_version_num(conn), stats.volatility(conn)


def _setup_hook(settings: Settings, setup: str | None) -> Any:
    if setup is None:
        return None
    from umbau.testing.setup_hook import run_setup

    return lambda conn: run_setup(settings, conn, setup)


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
        from umbau.plan import read_plan
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
    """Refuse (:class:`UnsafeMigration`, :class:`LintUnknown`) when the upgrade's gate
    says so (see :func:`gate`); returns the lint result.

    ``allow_unsafe=None`` takes ``[tool.umbau.lint] allow_unsafe`` (default false); when
    unsafe steps are allowed nothing is linted and None is returned. ``plan``: the
    upgrade's plan, read once by ``umbau upgrade`` (see :mod:`umbau.plan`).
    """
    if allow_unsafe is None:
        allow_unsafe = allow_unsafe_default(settings)
    if allow_unsafe:
        return None
    result = lint_upgrade(settings, target, plan)
    gate(result, lint_config.load(settings.section("lint")))
    return result


def gate(result: LintResult, cfg: lint_config.LintConfig) -> None:
    """Judge ``result`` for the database it was read from; raise to refuse the upgrade.

    An error-level finding on a table that does not exist there yet, or that holds
    fewer than ``gate_min_rows`` rows (and, when set, less than ``gate_min_size``
    bytes), becomes a warning with the reason. A finding without a table, or on a large
    table, refuses (:class:`UnsafeMigration`, exit 15), naming the table and its size.
    A revision lint could not render refuses only under ``gate_strict``
    (:class:`LintUnknown`, exit 29).
    """
    for finding in result.errors:
        reason = _harmless_here(result.tables.get(finding.table or ""), cfg)
        if reason:
            finding.severity = WARNING
            finding.notes.append(f"{reason}: not refused by the upgrade gate")
    unknown = [f for f in result.findings if f.rule == UNRENDERED]
    if unknown and cfg.gate_strict:
        raise LintUnknown(
            f"{len(unknown)} pending revision(s) could not be linted (first: {unknown[0].unit}) "
            "and lint.gate_strict is on: see `umbau lint --server URL`, or switch gate_strict "
            "off, or rerun with --allow-unsafe")
    if result.errors:
        first = result.errors[0]
        raise UnsafeMigration(
            f"{len(result.errors)} error-level lint finding(s) in the pending revisions (first: "
            f"{first.rule} at {first.location}{_size_of(result, first)}): see `umbau lint`, "
            f"then fix them, add `# umbau: ignore[{first.rule}] <reason>`, or rerun with "
            "--allow-unsafe",
            result.errors,
        )


def _harmless_here(stats: TableStats | None, cfg: lint_config.LintConfig) -> str | None:
    """Why a finding's table cannot hurt on this database, or None."""
    if stats is None:
        return None
    if not stats.exists:
        return f"{stats.name} does not exist here yet (this upgrade creates it)"
    if stats.rows is None or stats.rows >= cfg.gate_min_rows:
        return None
    if cfg.gate_min_size and (stats.bytes is None or stats.bytes >= cfg.gate_min_size):
        return None
    return f"{stats.name} holds {stats.rows_text()} here (gate_min_rows {cfg.gate_min_rows:,})"


def _size_of(result: LintResult, finding: Finding) -> str:
    stats = result.tables.get(finding.table or "")
    if stats is None or not stats.exists:
        return ""
    size = "? bytes" if stats.bytes is None else f"{stats.bytes:,} bytes"
    return f", on {stats.name}: {stats.rows_text()}, {size}"


def allow_unsafe_default(settings: Settings) -> bool:
    """``[tool.umbau.lint] allow_unsafe``: whether upgrade runs despite error findings."""
    return lint_config.load(settings.section("lint")).allow_unsafe


def _selected(project: bridge.Project, infos: Sequence[bridge.RevisionInfo],
              revisions: Sequence[str], since: str | None, url: str | None) -> set[str]:
    if revisions:
        return {project.get(r).revision for r in revisions}
    if since == "base":  # Alembic's name for "before the first revision": all of them
        return {r.revision for r in infos}
    if since:
        start = project.get(since).revision
        return {r for s in project.upgrade_steps((start,), "heads") for r in s.revision.split(",")}
    if url:
        from umbau.plan import pending_steps, read_heads
        from umbau.postgres.connect import connect

        with connect(url) as conn:
            current = read_heads(project, conn)
        return {r for s in pending_steps(project, current) for r in s.revision.split(",")}
    return {r.revision for r in infos}


def _revision_units(settings: Settings, revisions: Sequence[str], since: str | None,
                    url: str | None, capture: sources.Capture, downgrade: bool,
                    plan: UpgradePlan | None = None) -> list[Unit]:
    project = plan.project if plan else bridge.Project(settings, url or sources.OFFLINE_URL)
    infos = project.revisions()  # once: each call walks the whole graph again
    wanted = _selected(project, infos, revisions, since, url)
    with capture:
        rendered = sources.render_history(project, wanted, capture, infos)
    if plan is not None:  # the backup guard judges the same SQL
        plan.sql.update(_offline_sql(rendered))
    units = []
    for info in infos:
        source = Path(info.path).read_text(encoding="utf-8")
        units.append(Unit(
            id=info.revision, path=info.path, source=source, report=info.revision in wanted,
            statements=rendered.statements.get(info.revision, []),
            via=rendered.via.get(info.revision, "failed"),
            failure=rendered.failed.get(info.revision),
        ))
    if downgrade:
        units += sources.downgrade_units(project, wanted, {u.id: u.source for u in units},
                                         infos)
    return units


def _offline_sql(rendered: sources.Rendered) -> dict[str, str]:
    """The SQL text of each revision rendered offline (the ones run on a scratch database
    are left out: their SQL is not what the upgrade will run, only what it ran there)."""
    return {revision: "".join(f"{s.text};\n" for s in statements)
            for revision, statements in rendered.statements.items()
            if rendered.via.get(revision) == "offline"}


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
                     cfg: lint_config.LintConfig, session: Connection | None = None) -> None:
    from umbau.postgres import stats
    from umbau.postgres.connect import connect

    with nullcontext(session) if session is not None else connect(url) as conn:
        result.tables = stats.table_stats(conn, names, count_below=cfg.gate_min_rows)
    for finding in findings:
        table = result.tables.get(finding.table or "")
        if table is None:
            continue
        finding.table_rows, finding.table_bytes = table.rows, table.bytes
        if not table.exists:
            finding.notes.append(f"{table.name} does not exist in the database yet (an earlier "
                                 "pending revision creates it): harmless on this database, "
                                 "not on one where it holds data")
        elif table.bytes is not None and table.bytes > cfg.large_table \
                and finding.severity != ERROR:
            finding.severity = ERROR
            finding.notes.append(f"{table.name} is larger than lint.large_table: raised to error")
