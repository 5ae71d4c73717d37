"""``umbau doctor``: find what is wrong between the scripts, the database and the models."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from umbau import alembic_bridge as bridge
from umbau.commands._common import database, open_project
from umbau.errors import SettingsError
from umbau.postgres import UMBAU_TABLES, catalog, history
from umbau.postgres.errors import describe_error
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


def _check_drift(settings: Settings, conn: Any, result: DoctorResult) -> None:
    """Models against the database, as catalog snapshots (:mod:`umbau.testing.drift`)."""
    from umbau.testing.drift import differences

    result.checked.append("drift")
    excluded = UMBAU_TABLES | {settings.history_table, "alembic_version"}
    try:
        found = differences(settings, conn, settings.require_database_url(), excluded)
    except SettingsError:
        raise
    except Exception as exc:  # no right to CREATE DATABASE on this server, for one
        result.findings.append(Finding(
            "drift-unchecked", "warning",
            f"drift not checked: a scratch database for the models cannot be created "
            f"({describe_error(exc)})",
            "grant CREATEDB to this user, or run `umbau test --server URL` where it can"))
        return
    for line in found:
        result.findings.append(Finding(
            "drift", "warning", f"models and database differ (models -> database): {line}",
            'umbau new --autogenerate "sync models" and review the revision'))
