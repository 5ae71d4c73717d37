"""``umbau release run``: a plan's steps in order, each recorded in ``umbau_releases``,
undone in reverse when one fails, resumed after a crash.

The rules, in the order a run meets them:

1. The run takes the release lock (:func:`umbau.release.state.run_lock`): a second
   operator gets :class:`~umbau.errors.ReleaseBusy` (exit 38) at once.
2. The newest recorded run of the version decides what happens: completed, the answer
   is "already released" (exit 0); interrupted (a step ``running`` whose process is
   gone, or steps left), it is resumed: steps ``done`` never run again, the interrupted
   step runs again when that is safe (preflight, backup, migrate, backfill, env, cache,
   health) and otherwise the operator chooses resume or rollback (``--yes``: resume); a
   rollback that was interrupted is finished. Otherwise a new run starts.
3. A new run checks before anything changes: every env step's file and required keys
   (``envfile.plan_env_migration``), the ``${VARS}`` of URLs, and the rollback method:
   ``auto`` is ``downgrade`` when every pending downgrade() undoes its revision
   (``Project.check_downgradable``, ``irreversible_by_design``: :func:`choose_rollback`),
   else ``restore``; ``restore`` needs a backup step
   before the first migrate step (:class:`~umbau.errors.ReleasePlanError`, exit 37).
4. A failed step undoes the completed steps in reverse (and the failed step's own
   part): env files restored from the copy kept, ``undo`` commands run, the database
   downgraded to the revision before the release or the pre-release backup restored;
   health steps that had passed are checked again. Exit 35 when all of that worked
   (:class:`~umbau.errors.ReleaseFailed`), 36 with what is left otherwise
   (:class:`~umbau.errors.ReleaseRollbackFailed`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from sqlalchemy.engine import Connection

from umbau import alembic_bridge as bridge
from umbau.errors import (
    ConfirmationRequired,
    IrreversibleRevision,
    ReleaseFailed,
    ReleasePlanError,
    ReleaseRollbackFailed,
    Terminated,
    UmbauError,
)
from umbau.events import Event, EventHandler, emit
from umbau.masking import mask_secrets
from umbau.plan import read_heads
from umbau.postgres.connect import connect
from umbau.release import state
from umbau.release.plan import ReleasePlan, Step, choose_rollback, expand, load_plan
from umbau.release.result import ReleaseResult, StepReport, run_state
from umbau.release.shell import run_command
from umbau.settings import Settings

# Interrupted steps that may simply run again: they check before they change, or what
# they change is the same on a second run (env files are renamed by key, idempotently).
SAFE_TO_RERUN = frozenset({"preflight", "backup", "migrate", "backfill", "env", "cache",
                           "health"})
DATABASE_KINDS = frozenset({"migrate", "backfill"})
Decide = Callable[[Step], str]


class StepFailed(Exception):
    """A step's own failure, one line; ``detail`` is kept with the step's row."""

    def __init__(self, message: str, detail: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.detail = dict(detail or {})


@dataclass
class RunContext:
    """What a run knows about itself, kept in every row's ``detail``: the plan's
    fingerprint, the number of steps, the rollback method and the revisions before."""

    fingerprint: str
    steps_total: int
    rollback: str
    before: list[str]
    pending: list[str] = field(default_factory=list)
    data_stays: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def as_detail(self) -> dict[str, Any]:
        return {"fingerprint": self.fingerprint, "steps_total": self.steps_total,
                "rollback": self.rollback, "before": self.before, "pending": self.pending,
                "data_stays": self.data_stays}


def downgrade_verdicts(project: bridge.Project, revisions: list[str],
                       settings: Settings | None = None,
                       ) -> tuple[list[str], list[tuple[str, str]]]:
    """For pending ``revisions``: one line per revision whose downgrade cannot run
    (``check_downgradable`` refuses it, it is irreversible by design and refuses:
    :meth:`~umbau.alembic_bridge.Project.irreversible_by_design`, or ``settings``
    declare it so in ``[tool.umbau.test]``: listed in ``irreversible``, or at or below
    ``minimum_downgrade_revision``, as ``umbau test`` reads them), and (revision, why)
    for those whose downgrade runs but leaves their data changes. Raises SettingsError
    for a malformed ``[tool.umbau.test]``."""
    refuses: list[str] = []
    data_stays: list[tuple[str, str]] = []
    declared: dict[str, str] = {}
    if settings is not None:
        from umbau.testing.verdicts import Floor

        floor = Floor.from_settings(settings)
        declared.update(dict.fromkeys(floor.below(project),
                                      f"at or below [tool.umbau.test] "
                                      f"minimum_downgrade_revision {floor.minimum}"))
        declared.update(dict.fromkeys(floor.listed, "listed in [tool.umbau.test] irreversible"))
    for revision in revisions:
        if revision in declared:
            refuses.append(f"revision {revision} cannot be downgraded: {declared[revision]}")
            continue
        try:
            project.check_downgradable(revision)
        except IrreversibleRevision as exc:
            refuses.append(f"revision {revision} cannot be downgraded: "
                           f"{exc.message.split(':')[0]}")
            continue
        verdict = project.irreversible_by_design(revision)
        if verdict is None:
            continue
        kind, why = verdict
        if kind == "refuses":
            refuses.append(f"revision {revision} cannot be downgraded: {why}")
        else:
            data_stays.append((revision, why))
    return refuses, data_stays


def run_release(settings: Settings, version: str, *, plan_file: Path | None = None,
                assume_yes: bool = False, dry_run: bool = False,
                on_event: EventHandler | None = None,
                environ: Mapping[str, str] | None = None,
                decide: Decide | None = None) -> ReleaseResult:
    """Run (or resume, or finish rolling back) the release ``version``.

    ``environ``: the environment for ``${VAR}`` in URLs and for commands (the CLI
    passes its own; the library reads none). ``decide(step)`` is asked, when a run was
    interrupted in a step that is not safe to rerun, for ``"resume"`` or
    ``"rollback"``; ``assume_yes`` resumes without asking; without either
    :class:`~umbau.errors.ConfirmationRequired` (exit 10). ``dry_run``: the checks
    only, nothing is recorded or changed. Emits ``release_step_start`` /
    ``release_step_done`` (``duration`` in seconds) and ``stage`` events.

    Returns a :class:`ReleaseResult` (``released``, ``already released``, ``dry run``).
    Raises :class:`~umbau.errors.ReleaseFailed` (35, rolled back),
    :class:`~umbau.errors.ReleaseRollbackFailed` (36), ReleasePlanError (37),
    ReleaseBusy (38), and what loading the settings and reaching the server raise.
    """
    plan = load_plan(settings, version, plan_file)
    run = _Run(settings, plan, dict(environ or {}), on_event)
    if dry_run:
        return run.dry_run()
    url = settings.require_database_url()
    with state.run_lock(url) as conn:
        state.ensure_table(conn)
        run.conn = conn
        previous = state.latest_run(conn, version)
        situation = run_state(previous)
        if situation == "released":
            return ReleaseResult(version, previous[0].run_id, "already released",
                                 rollback_method=previous[0].detail.get("rollback"),
                                 steps=[_report(r, "already done") for r in
                                        _latest(previous).values()])
        if situation in ("running", "interrupted"):
            restored = state.restored_after(conn, settings.history_table, previous)
            if restored is not None:
                run.end_rewound(previous, restored)
                situation = "rewound by a restore"
        if situation in ("rolling back", "running", "interrupted"):
            return run.resume(previous, situation, assume_yes, decide)
        return run.start()


def _latest(rows: list[state.ReleaseRow]) -> dict[int, state.ReleaseRow]:
    latest: dict[int, state.ReleaseRow] = {}
    for row in rows:
        latest[row.step_index] = row
    return dict(sorted(latest.items()))


def _report(row: state.ReleaseRow, outcome: str | None = None) -> StepReport:
    return StepReport(row.step_index, row.step_name, row.kind, outcome or row.outcome,
                      row.seconds, row.error, dict(row.detail))


class _Run:
    def __init__(self, settings: Settings, plan: ReleasePlan, environ: dict[str, str],
                 on_event: EventHandler | None) -> None:
        self.settings = settings
        self.plan = plan
        self.environ = environ
        self.on_event = on_event
        self.conn: Connection | None = None
        self.run_id = uuid.uuid4().hex[:12]
        self.context: RunContext | None = None
        self.rows: dict[int, state.ReleaseRow] = {}
        self.reports: dict[int, StepReport] = {}
        self.started = time.monotonic()
        self.undone: list[state.ReleaseRow] = []  # rows undone by a rollback, in order

    # -- checks ---------------------------------------------------------------------------

    def checks(self) -> RunContext:
        """Everything that can be known before anything changes (module docstring, 3)."""
        for step in self.plan.steps:
            label = f"{self.plan.source}: release {self.plan.version}: step {step.name!r}"
            for key in ("url",):
                if key in step.options:
                    expand(str(step.options[key]), self.environ, label)
            if step.kind == "env":
                from umbau.release.envfile import plan_env_migration

                plan_env_migration(Path(step.options["file"]), **self._env_args(step))
        before, pending, refuses, data_stays = self._revisions()
        choice = choose_rollback(self.plan, refuses, data_stays)
        return RunContext(self.plan.fingerprint, len(self.plan.steps), choice.method, before,
                          pending, list(choice.data_stays), list(choice.warnings))

    def _revisions(self) -> tuple[list[str], list[str], list[str], list[tuple[str, str]]]:
        """(revisions now, pending revisions of the last migrate step's target, why each
        pending downgrade cannot run, (revision, why) of downgrades that leave data)."""
        migrates = [s for s in self.plan.steps if s.kind == "migrate"]
        if not migrates:
            return [], [], [], []
        url = self.settings.require_database_url()
        project = bridge.Project(self.settings, url)
        with connect(url) as conn:
            before = list(read_heads(project, conn))
        target = str(migrates[-1].options.get("target", "head"))
        project.resolve_target(target)
        pending = [r for step in project.upgrade_steps(before, target)
                   for r in step.revision.split(",")]
        refuses, data_stays = downgrade_verdicts(project, pending, self.settings)
        return before, pending, refuses, data_stays

    def _env_args(self, step: Step) -> dict[str, Any]:
        return {"rename": dict(step.options.get("rename", {})),
                "remove": list(step.options.get("remove", [])),
                "add": dict(step.options.get("add", {})),
                "require": list(step.options.get("require", []))}

    def dry_run(self) -> ReleaseResult:
        context = self.checks()
        steps = [StepReport(s.index, s.name, s.kind, "planned", detail=_jsonable(s.options))
                 for s in self.plan.steps]
        return ReleaseResult(self.plan.version, None, "dry run", context.rollback,
                             steps=steps, seconds=time.monotonic() - self.started,
                             warnings=list(context.warnings))

    # -- a new run ------------------------------------------------------------------------

    def start(self) -> ReleaseResult:
        self.context = self.checks()
        for warning in self.context.warnings:
            emit(self.on_event, Event("stage", message=f"WARNING: {warning}"))
        return self._steps_from(0, resumed=False)

    def _steps_from(self, first: int, *, resumed: bool) -> ReleaseResult:
        assert self.context is not None
        for step in self.plan.steps[first:]:
            if step.index in self.rows and self.rows[step.index].outcome == "done":
                continue
            self._run_step(step, self._begin(step))
        return ReleaseResult(self.plan.version, self.run_id, "released",
                             self.context.rollback, resumed,
                             [self.reports[i] for i in sorted(self.reports)],
                             time.monotonic() - self.started)

    def _begin(self, step: Step, extra: Mapping[str, Any] | None = None) -> state.ReleaseRow:
        assert self.conn is not None and self.context is not None
        emit(self.on_event, Event("release_step_start", message=step.name,
                                  data={"version": self.plan.version, "step": step.name,
                                        "kind": step.kind}))
        row = state.insert(self.conn, run_id=self.run_id, version=self.plan.version,
                           step_index=step.index, step_name=step.name, kind=step.kind,
                           detail={**self.context.as_detail(), **(extra or {})})
        self.rows[step.index] = row
        return row

    def _note(self, row: state.ReleaseRow, **detail: Any) -> None:
        """Keep a fact in the row before acting on it (a crash must not lose it)."""
        assert self.conn is not None
        state.update(self.conn, row.id, detail=detail)
        row.detail.update(detail)

    def _finish(self, step: Step, row: state.ReleaseRow, outcome: str, seconds: float,
                error: str | None, detail: Mapping[str, Any]) -> None:
        assert self.conn is not None
        state.update(self.conn, row.id, outcome=outcome, error=error, detail=detail,
                     finish=True)
        row.outcome = outcome
        row.error = error
        row.detail.update(detail)
        self.reports[step.index] = StepReport(step.index, step.name, step.kind, outcome,
                                              seconds, error, dict(row.detail))
        emit(self.on_event, Event("release_step_done", message=step.name, duration=seconds,
                                  error=error,
                                  data={"version": self.plan.version, "step": step.name,
                                        "kind": step.kind, "outcome": outcome}))

    def _interrupted(self, exc: KeyboardInterrupt, step: Step, *,
                     rolling_back: bool = False) -> KeyboardInterrupt:
        """Ctrl-C or SIGTERM in a step: the same exception (the CLI exits 130 or 143),
        saying what is true: the step stays ``running`` and a rerun resumes or rolls
        back (nothing is undone by the signal); during a rollback, the rerun finishes
        the rollback."""
        if rolling_back:
            what = (f"release {self.plan.version} interrupted while rolling back (undoing "
                    f"step {step.name!r}): rerun `umbau release run {self.plan.version}` "
                    "to finish the rollback")
        else:
            what = (f"release {self.plan.version} interrupted in step {step.name!r}: rerun "
                    f"`umbau release run {self.plan.version}` to resume or roll back")
        if isinstance(exc, Terminated):
            return Terminated(f"terminated (SIGTERM): {what}")
        return KeyboardInterrupt(f"interrupted: {what}")

    # -- the steps ------------------------------------------------------------------------

    def _execute(self, step: Step, row: state.ReleaseRow) -> dict[str, Any]:
        """Run one step; its failures are StepFailed or UmbauError (an OSError, e.g. a
        folder that vanished or ``sh`` that cannot start, becomes a StepFailed)."""
        handler = getattr(self, f"_step_{step.kind}")
        try:
            result: dict[str, Any] = handler(step, row)
        except OSError as exc:
            raise StepFailed(f"step {step.name!r}: {exc}") from exc
        return result

    def _shell(self, command: str, step: Step, timeout: float | None) -> dict[str, Any]:
        result = run_command(command, cwd=step.options["cwd"], timeout=timeout,
                             env=self.environ)
        if not result.ok:
            raise StepFailed(f"step {step.name!r}: {result.describe()}", result.as_dict())
        return result.as_dict()

    def _step_preflight(self, step: Step, row: state.ReleaseRow) -> dict[str, Any]:
        from umbau.backup.config import backup_config
        from umbau.backup.dump import disk_free
        from umbau.postgres.dumpcatalog import database_size

        assert self.context is not None
        url = self.settings.require_database_url()
        detail: dict[str, Any] = {}
        with connect(url) as conn:  # reachable
            size = database_size(conn)
        detail["database_bytes"] = size
        migrates = [s for s in self.plan.steps if s.kind == "migrate"]
        if migrates and not self._revisions()[1]:
            raise StepFailed(f"step {step.name!r}: no revisions are pending for "
                             f"{migrates[-1].options['target']}: the database is already "
                             "there (umbau status): drop the migrate step or check the "
                             "deployed code")
        detail["pending"] = self.context.pending
        if migrates:
            from umbau.commands.lint import check_upgrade

            for migrate in migrates:  # refuses with UnsafeMigration / LintUnknown
                check_upgrade(self.settings, str(migrate.options.get("target", "head")))
            detail["lint"] = "passed"
        if any(s.kind == "backup" for s in self.plan.steps):
            config = backup_config(self.settings)
            folder = config.dir
            while not folder.exists() and folder != folder.parent:
                folder = folder.parent
            needed = int(size * config.space_factor) + config.space_margin
            free = disk_free(folder)
            detail.update(backup_dir=str(config.dir), disk_needed=needed, disk_free=free)
            if free < needed:
                raise StepFailed(
                    f"step {step.name!r}: not enough free disk for the backup in "
                    f"{config.dir}: {free / 1024**2:,.1f} MiB free, {needed / 1024**2:,.1f} "
                    "MiB needed (database size x space_factor + space_margin): free space "
                    "or set [tool.umbau.backup] dir", detail)
        commands = []
        for command in step.options.get("commands", []):
            commands.append(self._shell(command, step, step.options.get("timeout")))
        detail["commands"] = commands
        return detail

    def _step_backup(self, step: Step, row: state.ReleaseRow) -> dict[str, Any]:
        from umbau.backup.dump import backup
        from umbau.backup.verify import verify

        taken = backup(self.settings, reason=f"before release {self.plan.version}",
                       on_event=self.on_event)
        detail = {"backup_path": str(taken.path), "created": taken.manifest.get("created"),
                  "revision": taken.manifest.get("revision")}
        self._note(row, **detail)
        if step.options.get("verify", True) or step.options.get("restore_test"):
            checked = verify(self.settings, taken.path,
                             restore_test=bool(step.options.get("restore_test")),
                             on_event=self.on_event)
            if not checked.ok:
                raise StepFailed(f"step {step.name!r}: the backup {taken.path.name} did not "
                                 f"verify: {'; '.join(checked.problems) or 'archive unreadable'}",
                                 detail)
            detail["verified"] = True
        return detail

    def _step_command(self, step: Step, row: state.ReleaseRow) -> dict[str, Any]:
        return self._shell(step.options["run"], step, step.options.get("timeout"))

    _step_smoke = _step_command

    def _step_migrate(self, step: Step, row: state.ReleaseRow) -> dict[str, Any]:
        from umbau.commands.migrate import upgrade

        url = self.settings.require_database_url()
        project = bridge.Project(self.settings, url)
        if "step_before" not in row.detail:
            with connect(url) as conn:
                self._note(row, step_before=list(read_heads(project, conn)))
        has_backup = any(s.kind == "backup" for s in self.plan.steps)
        result = upgrade(self.settings, str(step.options.get("target", "head")),
                         on_event=self.on_event, phase=step.options.get("phase"),
                         backup="never" if has_backup else None)
        return {"after": list(result.after), "revisions": [s.revision for s in result.steps],
                "retries": result.retries}

    def _step_backfill(self, step: Step, row: state.ReleaseRow) -> dict[str, Any]:
        from umbau.backfill import backfill_status, load_backfill, run_backfill

        done: dict[str, Any] = {}
        for name in step.options["names"]:
            if ":" in name:
                # a fresh step starts the backfill afresh (a rolled-back release left it
                # recorded as done); a step run again after a crash resumes its checkpoint
                result = run_backfill(self.settings, load_backfill(name, self.settings.root),
                                      workers=int(step.options.get("workers", 1)),
                                      source=name, on_event=self.on_event,
                                      restart="rerun_of" not in row.detail)
                if result.status != "done":
                    raise StepFailed(f"step {step.name!r}: backfill {result.name} is "
                                     f"{result.status}: resume it (umbau backfill resume)")
                done[result.name] = {"rows": result.rows, "seconds": result.duration_s}
                continue
            deadline = time.monotonic() + float(step.options.get("timeout") or 3600.0)
            while True:  # declared elsewhere (a revision started it): wait until done
                status = backfill_status(self.settings, name)[0].status
                if status == "done":
                    done[name] = {"status": status}
                    break
                if status in ("failed", "cancelled", "paused"):
                    raise StepFailed(f"step {step.name!r}: backfill {name} is {status}: "
                                     "see `umbau backfill status`")
                if time.monotonic() > deadline:
                    raise StepFailed(f"step {step.name!r}: backfill {name} still {status} "
                                     "after the step's timeout: see `umbau backfill status`")
                time.sleep(1.0)
        return {"backfills": done}

    def _step_env(self, step: Step, row: state.ReleaseRow) -> dict[str, Any]:
        from umbau.release.envfile import migrate_env

        path = Path(step.options["file"])
        kept = row.detail.get("env_backup")  # a rerun keeps the first run's copy
        if not kept:
            kept = str(path.with_name(f"{path.name}.before-{self.plan.version}-{self.run_id}"))
            self._note(row, env_backup=kept)
        # a backup_path that exists is kept as it is: the original, never a migrated file
        migration = migrate_env(path, backup_path=Path(kept), **self._env_args(step))
        return {"env_file": str(path), "env_backup": kept, "changes": list(migration.changes)}

    def _step_cache(self, step: Step, row: state.ReleaseRow) -> dict[str, Any]:
        from umbau.release.cache import clear_cache

        url = expand(step.options["url"], self.environ, f"step {step.name!r}")
        cleared = clear_cache(url, step.options["patterns"], batch=step.options["batch"],
                              flushall=step.options["flushall"], on_event=self.on_event)
        return {"deleted": cleared.deleted, "seconds": cleared.seconds}

    def _step_health(self, step: Step, row: state.ReleaseRow) -> dict[str, Any]:
        from umbau.release.health import check_health

        url = expand(step.options["url"], self.environ, f"step {step.name!r}")
        health = check_health(url, expect_status=step.options["expect_status"],
                              interval=step.options["interval"],
                              deadline=step.options["deadline"],
                              timeout=step.options["timeout"], on_event=self.on_event)
        return {"status": health.status, "attempts": health.attempts,
                "seconds": health.seconds}

    # -- resuming -------------------------------------------------------------------------

    def end_rewound(self, previous: list[state.ReleaseRow], restored: str) -> None:
        """The database was restored after the run's last recorded event (``umbau
        restore`` of its pre-release backup rewinds ``umbau_releases`` too): its rows say
        "interrupted" but the run went further. It is not resumed: its unfinished rows
        are closed as ``skipped``, every row is marked ``rewound_by_restore``, and a new
        run starts (steps after the backup — env files, commands — may have run: the
        message says to check them)."""
        assert self.conn is not None
        run_id = previous[0].run_id
        note = (f"the database was restored ({restored}) after this run's last recorded "
                "step: its record was rewound; a new run started")
        for row in previous:
            if row.outcome == "running":
                state.update(self.conn, row.id, outcome="skipped", error=note, finish=True,
                             detail={"rewound_by_restore": restored})
            else:
                state.update(self.conn, row.id, detail={"rewound_by_restore": restored})
        emit(self.on_event, Event("stage", message=(
            f"run {run_id} of release {self.plan.version} is not resumed: {note}; check by "
            "hand what its steps after the backup changed outside the database (env "
            "files, commands)")))

    def resume(self, previous: list[state.ReleaseRow], situation: str, assume_yes: bool,
               decide: Decide | None) -> ReleaseResult:
        first = previous[0]
        self.run_id = first.run_id
        if first.detail.get("fingerprint") != self.plan.fingerprint:
            raise ReleasePlanError(
                f"{self.plan.source}: release {self.plan.version}: the plan changed since "
                f"the interrupted run {self.run_id} began (fingerprint "
                f"{first.detail.get('fingerprint')}, now {self.plan.fingerprint}): put the "
                "plan back as it was to resume it (`umbau release history` shows its steps)")
        self.context = RunContext(first.detail["fingerprint"], first.detail["steps_total"],
                                  first.detail["rollback"], list(first.detail["before"]),
                                  list(first.detail.get("pending", [])),
                                  list(first.detail.get("data_stays", [])))
        self.rows = _latest(previous)
        for index, row in self.rows.items():
            if row.outcome == "done":
                self.reports[index] = _report(row, "already done")
        if situation == "rolling back":
            failed = next(r for r in self.rows.values() if r.outcome == "failed")
            emit(self.on_event, Event("stage", message=f"finishing the rollback of run "
                                                       f"{self.run_id} (step {failed.step_name} "
                                                       "had failed)"))
            self._rollback(self.plan.steps[failed.step_index], finishing=True,
                           error=failed.error)
        running = [r for r in self.rows.values() if r.outcome == "running"]
        if running:
            row = running[0]
            step = self.plan.steps[row.step_index]
            choice = "resume"
            if step.kind not in SAFE_TO_RERUN and not assume_yes:
                if decide is None:
                    raise ConfirmationRequired(
                        f"release {self.plan.version} was interrupted in step {step.name!r} "
                        f"({step.kind}), which is not safe to run twice without asking: "
                        "rerun with --yes to run it again, or answer the prompt in a terminal")
                choice = decide(step)
            emit(self.on_event, Event("stage", message=f"resuming run {self.run_id}: step "
                                                       f"{step.name!r} was interrupted ({choice})"))
            assert self.conn is not None
            if choice == "rollback":
                state.update(self.conn, row.id, outcome="failed", finish=True,
                             error="interrupted (umbau stopped during this step); rolled back "
                                   "at the operator's choice",
                             detail={"interrupted": True})
                row.outcome = "failed"
                self._rollback(step, error="interrupted; the operator chose rollback")
            old = row
            fresh = self._rerun_row(step, old)
            return self._resume_at(step, fresh)
        next_index = max(self.rows) + 1 if self.rows else 0
        emit(self.on_event, Event("stage", message=f"resuming run {self.run_id} at step "
                                                   f"{next_index + 1}"))
        return self._steps_from(next_index, resumed=True)

    def _rerun_row(self, step: Step, old: state.ReleaseRow) -> state.ReleaseRow:
        """A new row for the step that runs again, then the old one marked as superseded
        (in this order: a crash in between leaves a row that is ``running``)."""
        assert self.conn is not None
        keep = {k: v for k, v in old.detail.items()
                if k in ("env_backup", "step_before", "backup_path", "created")}
        fresh = self._begin(step, {**keep, "rerun_of": old.id})
        state.update(self.conn, old.id, outcome="skipped", finish=True,
                     error="interrupted (umbau stopped during this step); run again as "
                           f"row {fresh.id}", detail={"interrupted": True})
        return fresh

    def _resume_at(self, step: Step, row: state.ReleaseRow) -> ReleaseResult:
        self._run_step(step, row)
        return self._steps_from(step.index + 1, resumed=True)

    def _run_step(self, step: Step, row: state.ReleaseRow) -> None:
        """Execute ``step`` (its row begun) and record it ``done``; a failure is recorded
        ``failed`` and rolls the release back (raises); a signal leaves it ``running``."""
        began = time.monotonic()
        try:
            detail = self._execute(step, row)
        except KeyboardInterrupt as exc:
            raise self._interrupted(exc, step) from exc
        except (StepFailed, UmbauError) as exc:
            extra = exc.detail if isinstance(exc, StepFailed) else {
                "error_type": type(exc).__name__}
            self._finish(step, row, "failed", time.monotonic() - began, str(exc), extra)
            self._rollback(step)
        self._finish(step, row, "done", time.monotonic() - began, None, detail)

    # -- rolling back ---------------------------------------------------------------------

    def _rollback(self, failed: Step, *, finishing: bool = False,
                  error: str | None = None) -> NoReturn:
        """Undo the failed step's own part and every done step, in reverse; raise
        ReleaseFailed (all undone) or ReleaseRollbackFailed (what is left)."""
        assert self.conn is not None and self.context is not None
        failed_row = self.rows[failed.index]
        error = error or failed_row.error or "failed"
        emit(self.on_event, Event("stage", message=f"rolling back release "
                                                   f"{self.plan.version}: step "
                                                   f"{failed.name!r} failed"))
        left: list[str] = []
        restored = False
        # the summary lists the undos in the order they ran (a finished rollback: the
        # undos done before the interruption first, in the reverse order they had run)
        self.undone = [] if not finishing else [
            r for _, r in sorted(self.rows.items(), reverse=True) if r.outcome == "undone"]
        if finishing and failed_row.detail.get("undo_done"):
            self.undone.insert(0, failed_row)
        order = [failed_row] + [r for i, r in sorted(self.rows.items(), reverse=True)
                                if r.outcome == "done" and i != failed.index]
        if finishing and failed_row.detail.get("undo_done"):
            order = order[1:]
        for row in order:
            step = self.plan.steps[row.step_index]
            emit(self.on_event, Event("stage", message=f"rollback: undo {step.name!r}"))
            try:
                note, restored = self._undo(step, row, restored)
            except KeyboardInterrupt as exc:
                # a signal in an undo (the restore's pg_restore, an undo command) stops
                # the rollback; the rerun of the release finishes it, not a manual restore
                raise self._interrupted(exc, step, rolling_back=True) from exc
            except (StepFailed, UmbauError, OSError) as exc:
                left.append(f"{step.name} ({step.kind}): {exc}")
                if row is failed_row:
                    state.update(self.conn, row.id, outcome="undo_failed",
                                 detail={"undo_error": str(exc)[:500]})
                else:
                    state.update(self.conn, row.id, outcome="undo_failed",
                                 error=f"undo failed: {exc}", detail={"undo_error": str(exc)})
                row.outcome = "undo_failed"
                continue
            if row is failed_row:
                state.update(self.conn, row.id, detail={"undo_done": True, "undo": note})
            else:
                state.update(self.conn, row.id, outcome="undone", detail={"undo": note})
                row.outcome = "undone"
            row.detail["undo"] = note
            self.undone.append(row)
        left += self._health_after_rollback()
        for index, row in self.rows.items():
            if row.outcome in ("undone", "undo_failed") or index == failed.index:
                report = _report(row)
                if report.seconds is None and index in self.reports:
                    report.seconds = self.reports[index].seconds  # the row's finish is
                    # written by the database; the run measured it when the step ended
                self.reports[index] = report
        seconds = time.monotonic() - self.started
        if left:
            result = ReleaseResult(self.plan.version, self.run_id, "rollback failed",
                                   self.context.rollback, steps=self._ordered(),
                                   seconds=seconds, failed_step=failed.name, error=error,
                                   left=left)
            raise ReleaseRollbackFailed(mask_secrets(
                f"release {self.plan.version} failed at step {failed.name!r} ({error}) and "
                f"the rollback did not finish: {'; '.join(left)}: fix these by hand "
                "(umbau release status shows each step), then rerun"), self.plan.version,
                failed.name, left, result)
        stays = self._data_stayed()
        warnings = [f"the data changes of {', '.join(stays)} stay: a downgrade does not "
                    "put them back (restore the pre-release backup for that)"] if stays else []
        result = ReleaseResult(self.plan.version, self.run_id, "rolled back",
                               self.context.rollback, steps=self._ordered(), seconds=seconds,
                               failed_step=failed.name, error=error, warnings=warnings)
        stayed = f"; but the data changes of {', '.join(stays)} stay" if stays else ""
        raise ReleaseFailed(mask_secrets(
            f"release {self.plan.version} failed at step {failed.name!r}: {error}; rolled "
            f"back ({self._rollback_summary()}){stayed}: fix the cause and rerun"),
            self.plan.version, failed.name, result)

    def _ordered(self) -> list[StepReport]:
        return [self.reports[i] for i in sorted(self.reports)]

    def _data_stayed(self) -> list[str]:
        """Pending revisions with a data-only upgrade and an empty downgrade that a
        downgrade in this rollback went through (their data changes stay)."""
        assert self.context is not None
        downgraded = any(str(r.detail.get("undo", "")).startswith("downgraded to")
                         for r in self.rows.values())
        return list(self.context.data_stays) if downgraded else []

    def _rollback_summary(self) -> str:
        assert self.context is not None
        notes = [str(r.detail.get("undo")) for r in self.undone
                 if r.detail.get("undo") and r.detail.get("undo") != "nothing to undo"]
        return "; ".join(notes) or "nothing had changed"

    def _undo(self, step: Step, row: state.ReleaseRow, restored: bool) -> tuple[str, bool]:
        """Undo one step; returns (what was done, whether the database was restored)."""
        assert self.context is not None
        if step.kind == "env":
            from umbau.release.envfile import restore_env

            kept = row.detail.get("env_backup")
            if kept and Path(kept).exists():
                restore_env(Path(step.options["file"]), Path(kept))
                return f"{Path(step.options['file']).name} restored", restored
            return "nothing to undo", restored
        if step.kind == "command":
            undo = step.options.get("undo")
            if undo:
                self._shell(undo, step, step.options.get("timeout"))
                return mask_secrets(f"ran `{undo}`"), restored
            return "nothing to undo", restored
        if step.kind in DATABASE_KINDS:
            if restored:
                return "covered by the restore", restored
            if self.context.rollback == "restore":
                return self._restore(), True
            if step.kind == "migrate":
                return self._downgrade(row), restored
            return "rows stay (the downgrade undoes what the revisions added)", restored
        if step.kind == "health":
            return "checked again after the rollback", restored
        return "nothing to undo", restored

    def _downgrade(self, row: state.ReleaseRow) -> str:
        from umbau.commands.migrate import downgrade

        before = row.detail.get("step_before")
        if before is None:
            before = self.context.before if self.context else []
        if len(before) > 1:
            raise StepFailed(f"the database had several heads before the release "
                             f"({', '.join(before)}): downgrade by hand")
        target = before[0] if before else "base"
        url = self.settings.require_database_url()
        project = bridge.Project(self.settings, url)
        with connect(url) as conn:
            now = list(read_heads(project, conn))
        if now == list(before):
            return f"database still at {target}"
        downgrade(self.settings, target, yes=True, on_event=self.on_event)
        return f"downgraded to {target}"

    def _restore(self) -> str:
        from umbau.backup.guard import restore_for_rollback

        assert self.conn is not None
        taken = next((r for r in self.rows.values()
                      if r.kind == "backup" and r.detail.get("backup_path")), None)
        if taken is None or not taken.detail.get("created"):
            raise StepFailed("no backup of this release to restore: restore the newest "
                             "backup by hand (umbau backups list, umbau restore)")
        kept = state.rows(self.conn, run_id=self.run_id)
        path = Path(taken.detail["backup_path"])
        emit(self.on_event, Event("stage", message=f"rollback: restoring {path.name}"))
        result = restore_for_rollback(self.settings, path, str(taken.detail["created"]))
        state.restore_rows(self.conn, list(reversed(kept)))
        return (f"restored {path.name} (revision "
                f"{', '.join(result.revision) or 'base'})")

    def _health_after_rollback(self) -> list[str]:
        """Health steps that had passed, checked again: the old version must answer. A
        check that fails marks its row ``undo_failed`` (the run is "rollback failed")."""
        assert self.conn is not None
        left = []
        for row in self.rows.values():
            step = self.plan.steps[row.step_index]
            if step.kind != "health" or row.outcome not in ("undone",):
                continue
            try:
                self._step_health(step, row)
            except (StepFailed, UmbauError) as exc:
                problem = f"{step.name} after the rollback: {exc}"
                left.append(problem)
                state.update(self.conn, row.id, outcome="undo_failed",
                             error=f"undo failed: {problem}",
                             detail={"undo": "checked again after the rollback: failed",
                                     "undo_error": str(exc)[:500]})
                row.outcome = "undo_failed"
                row.error = f"undo failed: {problem}"
                row.detail.update(undo="checked again after the rollback: failed",
                                  undo_error=str(exc)[:500])
                continue
            note = "answered again after the rollback"
            state.update(self.conn, row.id, detail={"undo": note})
            row.detail["undo"] = note
        return left


def _jsonable(options: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in options.items()}
