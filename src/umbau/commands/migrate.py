"""``umbau upgrade``, ``downgrade``, ``stamp`` and ``merge``."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from umbau import alembic_bridge as bridge
from umbau.commands._common import NewRevisionResult, database, open_project
from umbau.errors import ConfirmationRequired, UsageError
from umbau.events import Event, EventHandler, emit
from umbau.plan import read_plan
from umbau.runner import MigrateResult, migrate, warn_old_lock_holders
from umbau.settings import Settings


def upgrade(settings: Settings, target: str = "head", *,
            on_event: EventHandler | None = None,
            allow_unsafe: bool | None = None, backup: str | None = None,
            rollback: str | None = None, phase: str | None = None) -> MigrateResult:
    """Apply revisions up to ``target`` (default: the single head).

    ``phase="pre"`` stops before the first pending post-deploy revision (``phase =
    "post"`` in its file), so the new application version can be deployed; ``"post"``
    applies the rest; None applies both, in order.

    The revisions to run are linted first; error-level findings refuse the upgrade
    (:class:`~umbau.errors.UnsafeMigration`) unless ``allow_unsafe`` (default: the
    ``[tool.umbau.lint] allow_unsafe`` setting). A backup is taken first when ``backup``
    (default: ``[tool.umbau.backup] before_upgrade``) says so; ``rollback="restore"``
    restores it when a revision fails in a way its transaction cannot undo
    (:mod:`umbau.backup.guard`).
    """
    project = open_project(settings)
    project.resolve_target(target)
    if phase is not None:
        stop, current = phase_target(settings, project, target, phase)
        if stop is None:  # the next pending revision is a post-deploy one
            return MigrateResult(direction="upgrade", target=target, before=current,
                                 after=current)
        target = stop

    def run() -> MigrateResult:
        return migrate(settings, project, "upgrade", target, on_event=on_event)

    policy = _backup_policy(settings, backup, rollback)
    gate = _lint_gate_on(settings, allow_unsafe)
    decision = None
    if gate or policy not in (None, "never"):  # else nothing to judge: no plan to read
        decision = _judge(settings, project, target, gate, policy, on_event)
    if policy is None:
        return run()
    from umbau.backup.guard import guarded_upgrade

    return guarded_upgrade(  # type: ignore[no-any-return]
        settings, project, target, run, policy=backup, rollback=rollback, on_event=on_event,
        decision=decision)


def _backup_policy(settings: Settings, backup: str | None, rollback: str | None) -> str | None:
    """The backup guard's policy, or None when no guard runs (``--backup never`` without
    ``--rollback restore``): then not even the backup package is imported."""
    if backup == "never" and rollback in (None, "none"):
        return None
    from umbau.backup.guard import policy_for

    return policy_for(settings, backup, rollback)


def _lint_gate_on(settings: Settings, allow_unsafe: bool | None) -> bool:
    """Does the lint gate judge this upgrade (``allow_unsafe``, else the lint setting)?"""
    if allow_unsafe is not None:
        return not allow_unsafe
    from umbau.commands.lint import allow_unsafe_default

    return not allow_unsafe_default(settings)


def _judge(settings: Settings, project: bridge.Project, target: str, gate: bool,
           policy: str | None, on_event: EventHandler | None) -> Any:
    """Read the plan in one session, then the lint gate (raises UnsafeMigration; warns
    about old lock holders on the tables it names) and the backup decision (None when no
    backup is to be decided)."""
    with database(settings) as conn:  # the plan's one session, closed before the run
        plan = read_plan(project, target, conn)
        try:
            if gate:  # the linter (and pglast) only when it has work to do
                from umbau.commands.lint import check_upgrade

                linted = check_upgrade(settings, target, False, plan)
                warn_old_lock_holders(settings, linted.tables if linted else (), on_event,
                                      plan.connection)
            if policy in (None, "never"):
                return None  # guarded_upgrade then opens no connection: never means never
            from umbau.backup.guard import decide

            return decide(settings, project, target, policy, plan)
        finally:
            plan.connection = None


def phase_target(settings: Settings, project: bridge.Project, target: str,
                 phase: str) -> tuple[str | None, tuple[str, ...]]:
    """The target of ``upgrade --phase`` and the current revisions: for "pre", the last
    pending revision before the first post-deploy one (None when that is the very next
    one); for "post", ``target``."""
    if phase not in bridge.PHASES:
        raise UsageError(f"--phase {phase}: use pre (before the deploy) or post (after it)")
    with database(settings) as conn:
        current = bridge.current_heads(project, conn)
    if phase == "post":
        return target, current
    last: str | None = None
    for step in project.upgrade_steps(current, target):
        if project.phase(step.revision) == "post":
            return last, current
        last = step.revision
    return target, current


@dataclass
class SqlResult:
    sql: str
    start: str | None
    target: str

    def as_dict(self) -> dict[str, Any]:
        return {"start": self.start, "target": self.target, "sql": self.sql}


def _split_range(target: str) -> tuple[str | None, str]:
    if ":" in target:
        start, _, end = target.partition(":")
        return start or None, end
    return None, target


def upgrade_sql(settings: Settings, target: str = "head") -> SqlResult:
    """The SQL of an upgrade, rendered offline; ``target`` may be ``FROM:TO``."""
    project = open_project(settings)
    start, end = _split_range(target)
    for name in (start, end):
        if name:
            project.resolve_target(name)
    return SqlResult(bridge.render_sql(project, start, end), start, end)


def downgrade_sql(settings: Settings, target: str) -> SqlResult:
    """The SQL of a downgrade, rendered offline; ``target`` must be ``FROM:TO``."""
    project = open_project(settings)
    start, end = _split_range(target)
    if start is None:
        raise UsageError("downgrade --sql needs a range FROM:TO, e.g. `umbau downgrade --sql "
                         "head:-1`")
    return SqlResult(bridge.render_sql(project, start, end, downgrade=True), start, end)


@dataclass
class DowngradePreview:
    """What a downgrade would run, and what it would drop."""

    target: str
    current: tuple[str, ...]
    steps: list[bridge.Step] = field(default_factory=list)
    drops: dict[str, list[str]] = field(default_factory=dict)
    unrendered: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # data-only revisions: no-op downgrades

    @property
    def destructive(self) -> bool:
        return (self.target == "base" and bool(self.steps)) or any(self.drops.values()) \
            or bool(self.unrendered)

    def describe(self) -> list[str]:
        lines = []
        for step in self.steps:
            for what in self.drops.get(step.revision, []):
                lines.append(f"{step.revision}: {what}")
            if step.revision in self.unrendered:
                lines.append(f"{step.revision}: SQL not known in advance "
                             f"({self.unrendered[step.revision]})")
        return lines

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "current": list(self.current),
            "steps": [s.revision for s in self.steps],
            "drops": self.drops,
            "unrendered": self.unrendered,
            "destructive": self.destructive,
            "notes": self.notes,
        }


def preview_downgrade(settings: Settings, target: str) -> DowngradePreview:
    project = open_project(settings)
    project.resolve_target(target)
    with database(settings) as conn:
        current = bridge.current_heads(project, conn)
    # pglast is imported here, not at the top: upgrade and status do not need the parser,
    # and importing it costs every CLI run about 20 ms (see docs/benchmarks.md).
    from umbau import sql as sqlparse

    preview = DowngradePreview(target=target, current=current)
    preview.steps = project.downgrade_steps(current, target)
    for step in preview.steps:
        note = project.check_downgradable(step.revision)
        preview.notes += [note] if note else []
    rendered = _render_range(project, current, target)
    for step in preview.steps:
        sql = rendered.get(step.revision)
        if sql is None:  # rendered one step at a time, to tell which one cannot be
            try:
                parent = (step.down_revision or "base").split(",")[0]
                sql = bridge.render_sql(project, step.revision, parent, downgrade=True)
            except Exception as exc:
                preview.unrendered[step.revision] = f"{type(exc).__name__}: {exc}"[:200]
                continue
        drops, _ = sqlparse.destructive_objects(sql)
        preview.drops[step.revision] = drops
    return preview


_STEP_MARKER = re.compile(r"^-- Running downgrade (.+?) -> .*$", re.MULTILINE)


def _render_range(project: bridge.Project, current: tuple[str, ...],
                  target: str) -> dict[str, str]:
    """The downgrade SQL of every step in one offline render, keyed by revision.

    Empty when it cannot be had in one go (several current heads, or a step that needs
    a database): the caller then renders step by step.
    """
    if len(current) != 1:
        return {}
    try:
        rendered = bridge.render_sql(project, current[0], target, downgrade=True)
    except Exception:
        return {}
    parts = _STEP_MARKER.split(rendered)
    return {revision: body for revision, body in zip(parts[1::2], parts[2::2], strict=True)}


def downgrade(
    settings: Settings,
    target: str,
    *,
    yes: bool = False,
    confirm: Callable[[DowngradePreview], bool] | None = None,
    on_event: EventHandler | None = None,
) -> MigrateResult:
    """Revert to ``target`` (``-1``, a revision or ``base``).

    ``base`` and any downgrade that drops tables or columns need ``yes=True`` or a
    ``confirm`` callback that returns True after showing the preview.
    """
    if not target:
        raise UsageError("downgrade needs a target: -1, a revision, or base")
    preview = preview_downgrade(settings, target)
    if preview.destructive and not yes and not (confirm and confirm(preview)):
        what = "; ".join(preview.describe()) or f"every revision down to {target}"
        raise ConfirmationRequired(
            f"this downgrade drops data ({what}): rerun with --yes after taking a backup"
        )
    for note in preview.notes:
        emit(on_event, Event("note", message=note))
    project = open_project(settings)
    return migrate(settings, project, "downgrade", target, on_event=on_event)


def stamp(settings: Settings, revision: str, *, purge: bool = False,
          on_event: EventHandler | None = None) -> MigrateResult:
    """Set the version table to ``revision`` without running any migration."""
    project = open_project(settings)
    project.resolve_target(revision)
    return migrate(settings, project, "stamp", revision, on_event=on_event, purge=purge)


def merge(settings: Settings, message: str, revisions: list[str] | None = None,
          ) -> NewRevisionResult:
    """A merge revision joining ``revisions`` (default: all heads)."""
    project = open_project(settings)
    revs = revisions or list(project.heads())
    if len(revs) < 2:
        raise UsageError("there is nothing to merge: the scripts have a single head")
    for rev in revs:
        project.resolve_target(rev)
    script = bridge.generate_merge(project, message, revs)
    return NewRevisionResult(script.revision, script.path, message,
                             bridge.down_revisions_of(script))
