"""``umbau doctor``: find what is wrong between the scripts, the database and the models."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from umbau import alembic_bridge as bridge
from umbau.commands._common import database, open_project
from umbau.errors import SettingsError
from umbau.loader import load_object, split_spec
from umbau.postgres import UMBAU_TABLES, catalog, history
from umbau.settings import Settings


@dataclass(frozen=True)
class Finding:
    code: str
    severity: str  # "error" | "warning" | "info"
    message: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return dict(self.__dict__)


@dataclass
class DoctorResult:
    findings: list[Finding] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.severity != "info"]

    @property
    def exit_code(self) -> int:
        return 1 if self.problems else 0

    def as_dict(self) -> dict[str, Any]:
        return {"ok": not self.problems, "checked": self.checked,
                "findings": [f.as_dict() for f in self.findings]}


def doctor(settings: Settings) -> DoctorResult:
    """Run every check; each finding says how to fix it."""
    result = DoctorResult()
    project = open_project(settings)
    heads = project.heads()
    _check_heads(heads, result)
    if not _check_env(project, result):
        return result  # without umbau's connection in env.py nothing below can run
    with database(settings) as conn:
        current = bridge.current_heads(project, conn)
        rows = history.read(conn, settings.history_table)
        _check_unknown(project, current, rows, result)
        _check_checksums(project, current, rows, result)
        _check_failed_runs(rows, result)
        _check_invalid_indexes(conn, result)
        if not any(f.code == "unknown-revision" for f in result.findings):
            pending = [] if len(heads) > 1 else project.upgrade_steps(current, "heads")
            if pending:
                result.findings.append(Finding(
                    "pending", "info", f"{len(pending)} revision(s) pending", "umbau upgrade"))
            elif settings.metadata:
                _check_drift(settings, conn, result)
        conn.rollback()
    return result


def _check_heads(heads: tuple[str, ...], result: DoctorResult) -> None:
    result.checked.append("heads")
    if len(heads) > 1:
        result.findings.append(Finding(
            "multiple-heads", "error",
            f"the scripts have {len(heads)} heads: {', '.join(heads)}",
            f'umbau merge -m "merge heads" {" ".join(heads)}'))


def _check_env(project: bridge.Project, result: DoctorResult) -> bool:
    """Does env.py use the connection umbau hands over? A finding with the recipe if not."""
    result.checked.append("env.py")
    if bridge.env_shares_connection(project):
        return True
    result.findings.append(Finding(
        "env-not-shared", "error",
        f"{project.script.env_py_location} does not use the connection umbau hands over",
        "in run_migrations_online(), before creating an engine, add:\n"
        + bridge.SHARING_RECIPE))
    return False


def _check_invalid_indexes(conn: Any, result: DoctorResult) -> None:
    result.checked.append("invalid-indexes")
    for index in catalog.invalid_indexes(conn):
        result.findings.append(Finding(
            "invalid-index", "error",
            f"index {index.schema}.{index.name} on {index.table} is invalid (a failed "
            "CREATE INDEX CONCURRENTLY)",
            f"REINDEX INDEX CONCURRENTLY {index.schema}.{index.name}; or DROP INDEX "
            f"CONCURRENTLY {index.schema}.{index.name} and create it again"))


def _check_unknown(project: bridge.Project, current: tuple[str, ...],
                   rows: list[history.HistoryRow], result: DoctorResult) -> None:
    result.checked.append("database-revision")
    ids = [r.revision for r in project.revisions()]
    for rev in current:
        if project.known(rev):
            continue
        nearest = _known_ancestors(project, rev, rows)
        nearest += [c for c in difflib.get_close_matches(rev, ids, n=3, cutoff=0.4)
                    if c not in nearest]
        hint = f"nearest known: {', '.join(nearest)}" if nearest else "no known revision is near"
        target = nearest[0] if nearest else "<revision>"
        result.findings.append(Finding(
            "unknown-revision", "error",
            f"the database is at {rev}, which no revision file knows ({hint})",
            f"restore the missing revision file, or, if the schema matches it: "
            f"umbau stamp --purge {target}"))


def _known_ancestors(project: bridge.Project, rev: str,
                     rows: list[history.HistoryRow]) -> list[str]:
    """Walk the recorded down revisions of ``rev`` until reaching known ones."""
    parents = {r.revision: r.down_revision for r in reversed(rows) if r.direction == "upgrade"}
    seen: set[str] = set()
    todo = [rev]
    found: list[str] = []
    while todo:
        cur = todo.pop()
        if cur in seen:
            continue
        seen.add(cur)
        for parent in (parents.get(cur) or "").split(","):
            if not parent:
                continue
            if project.known(parent):
                found.append(parent)
            else:
                todo.append(parent)
    return found


def _check_checksums(project: bridge.Project, current: tuple[str, ...],
                     rows: list[history.HistoryRow], result: DoctorResult) -> None:
    result.checked.append("checksums")
    applied: set[str] = set()
    for rev in current:
        if project.known(rev):
            applied |= {s.revision for s in project.script.walk_revisions("base", rev)}
    recorded: dict[str, history.HistoryRow] = {}
    for row in rows:  # newest first: keep the newest successful upgrade per revision
        if row.direction == "upgrade" and row.outcome == "success" and row.checksum:
            recorded.setdefault(row.revision, row)
    for rev in sorted(applied):
        last = recorded.get(rev)
        if last is None:
            continue
        now = project.checksum(rev)
        if now and now != last.checksum:
            result.findings.append(Finding(
                "edited-after-apply", "warning",
                f"revision {rev} ({project.get(rev).path}) changed after it ran on "
                f"{last.finished_at:%Y-%m-%d %H:%M}",
                "revert the edit and put the change in a new revision (umbau new)"))


def _check_failed_runs(rows: list[history.HistoryRow], result: DoctorResult) -> None:
    result.checked.append("failed-runs")
    latest: dict[tuple[str, str], history.HistoryRow] = {}
    for row in rows:
        latest.setdefault((row.revision, row.direction), row)
    for (rev, direction), row in sorted(latest.items()):
        if row.outcome == "failed":
            result.findings.append(Finding(
                "failed-run", "warning",
                f"the last {direction} of {rev} failed on {row.finished_at:%Y-%m-%d %H:%M} "
                f"after {row.attempts} attempt(s): {row.error}",
                f"fix the cause, then umbau {direction} "
                f"{'head' if direction == 'upgrade' else '-1'}"))
        elif row.outcome == "partial":
            result.findings.append(Finding(
                "partial-run", "error",
                f"the last {direction} of {rev} was partially applied on "
                f"{row.finished_at:%Y-%m-%d %H:%M}: it committed part of its work, then "
                f"failed: {row.error}",
                f"finish it by hand and `umbau stamp {rev}`, or undo the committed part "
                f"and `umbau {direction} --retry-partial`"))


def load_metadata(settings: Settings) -> Any:
    """Import the models' MetaData named by the ``metadata`` setting (``module:attribute``)."""
    spec = settings.metadata or ""
    try:
        split_spec(spec)
    except ValueError:
        raise SettingsError(
            f"metadata = {spec!r}: use module:attribute, e.g. app.models:Base.metadata"
        ) from None
    try:
        return load_object(spec, settings.root)
    except (ImportError, AttributeError) as exc:
        raise SettingsError(
            f"metadata = {spec!r} cannot be loaded ({exc}): fix the setting") from exc


def _check_drift(settings: Settings, conn: Any, result: DoctorResult) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    result.checked.append("drift")
    metadata = load_metadata(settings)

    def include_name(name: str | None, type_: str, parent: Any) -> bool:
        return not (type_ == "table" and name in UMBAU_TABLES | {settings.history_table})

    context = MigrationContext.configure(conn, opts={"include_name": include_name,
                                                     "compare_type": True})
    diffs = compare_metadata(context, metadata)
    for diff in diffs:
        result.findings.append(Finding(
            "drift", "warning", f"models and database differ: {_describe_diff(diff)}",
            'umbau new --autogenerate "sync models" and review the revision'))


def _describe_diff(diff: Any) -> str:
    if isinstance(diff, list):
        return "; ".join(_describe_diff(d) for d in diff)
    kind = diff[0]
    obj: Any = diff[1] if len(diff) > 1 else None
    if kind in {"add_table", "remove_table"}:
        return f"{kind.replace('_', ' ')} {obj.name}"
    if kind in {"add_column", "remove_column"}:
        return f"{kind.replace('_', ' ')} {diff[2]}.{diff[3].name}"
    if kind in {"add_index", "remove_index"}:
        return f"{kind.replace('_', ' ')} {obj.name} on {obj.table.name}"
    if kind.startswith("modify_"):
        return f"{kind.replace('_', ' ')} {diff[2]}.{diff[3]}: {diff[-2]} -> {diff[-1]}"
    return str(diff)[:200]
