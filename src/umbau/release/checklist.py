"""``umbau release plan VERSION``: the plan as a Markdown checklist, like the guides'
checklists, with the values filled in (backup folder, rollback method, revisions,
estimated times from past runs in ``umbau_releases`` and ``umbau_history``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import text

from umbau import alembic_bridge as bridge
from umbau.errors import ReleasePlanError, UmbauError
from umbau.plan import read_heads
from umbau.postgres import history
from umbau.postgres.connect import connect
from umbau.postgres.quoting import quote_dotted
from umbau.release import state
from umbau.release.plan import ReleasePlan, Step, choose_rollback, load_plan
from umbau.release.result import Checklist
from umbau.release.runner import downgrade_verdicts
from umbau.release.state import masked
from umbau.settings import Settings, format_duration, mask_url


def release_plan(settings: Settings, version: str, plan_file: Path | None = None,
                 ) -> Checklist:
    """The checklist of ``version`` (Markdown in ``.markdown``).

    Reads the database when it can (current and pending revisions, whether each has a
    downgrade, past durations); without a reachable database the values it would fill
    in say "unknown". Raises :class:`~umbau.errors.ReleasePlanError` for a bad plan.
    Estimates are seconds: the mean of the step's past ``done`` runs of this version,
    else of the same kind in any release; a migrate step without either: the mean
    duration of upgrade steps in ``umbau_history`` times the pending revisions.
    """
    plan = load_plan(settings, version, plan_file)
    facts = _facts(settings, plan)
    estimates = {s.name: _estimate(s, facts) for s in plan.steps}
    rollback, warnings = _rollback_method(plan, facts)
    backup_dir = _backup_dir(settings)
    lines = [f"# Release {plan.version}" + (f" (from {plan.from_version})"
                                            if plan.from_version else ""), ""]
    if plan.description:
        lines += [plan.description, ""]
    lines += [f"- plan: `{plan.source}` (fingerprint {plan.fingerprint})",
              f"- database: `{mask_url(settings.database_url) or 'not configured'}`",
              f"- revision now: {', '.join(facts['current']) or 'base'}"
              if facts["reachable"] else f"- revision now: unknown ({facts['problem']})",
              f"- pending: {', '.join(facts['pending']) or 'none'}"
              if facts["reachable"] else "- pending: unknown",
              f"- rollback: {rollback}",
              *[f"- **WARNING**: {w}" for w in warnings],
              f"- backups go to: `{backup_dir}`"]
    known = [v for v in estimates.values() if v is not None]
    if known:
        lines.append(f"- estimated time: {format_duration(sum(known))}"
                     + (" (some steps never ran: not counted)" if len(known) < len(estimates)
                        else ""))
    lines += ["", "## Steps", ""]
    for step in plan.steps:
        estimate = estimates[step.name]
        when = f" — about {format_duration(estimate)}" if estimate is not None else ""
        lines.append(f"- [ ] {step.index + 1}. **{step.name}** ({step.kind}): "
                     f"{_describe(step, backup_dir, facts)}{when}")
    lines += ["", "## If a step fails", "",
              "umbau undoes the steps that completed, in reverse order, by itself:", ""]
    for step in reversed(plan.steps):
        undo = _undo_text(step, rollback)
        if undo:
            lines.append(f"- [ ] {step.name}: {undo}")
    lines += ["", "Exit 35: rolled back cleanly; 36: the rollback did not finish (the "
              "message and `umbau release status` say what is left). A killed run resumes "
              f"with `umbau release run {plan.version}`.", ""]
    return Checklist(plan.version, masked("\n".join(lines)), plan.as_dict(), rollback, estimates,
                     str(backup_dir), list(facts["pending"]), list(facts["current"]),
                     masked(warnings))


def _backup_dir(settings: Settings) -> Path:
    from umbau.backup.config import backup_config

    try:
        return backup_config(settings).dir
    except UmbauError:
        return settings.root / "backups"


def _facts(settings: Settings, plan: ReleasePlan) -> dict[str, Any]:
    facts: dict[str, Any] = {"reachable": False, "current": [], "pending": [],
                             "irreversible": [], "data_stays": [], "averages": {},
                             "history_mean": None,
                             "problem": "no database URL"}
    if not settings.database_url:
        return facts
    migrates = [s for s in plan.steps if s.kind == "migrate"]
    try:
        project = bridge.Project(settings, settings.database_url) if migrates else None
        with connect(settings.database_url) as conn:
            facts["reachable"] = True
            if project is not None:
                facts["current"] = list(read_heads(project, conn))
            facts["averages"] = state.average_seconds(conn, plan.version)
            if history.table_exists(conn, settings.history_table):
                mean = conn.execute(text(
                    f"SELECT avg(duration_ms) / 1000.0 FROM {quote_dotted(settings.history_table)} "
                    "WHERE direction = 'upgrade' AND outcome = 'success'")).scalar()
                facts["history_mean"] = None if mean is None else float(mean)
        if project is not None:
            target = str(migrates[-1].options.get("target", "head"))
            facts["pending"] = [r for s in project.upgrade_steps(facts["current"], target)
                                for r in s.revision.split(",")]
            facts["irreversible"], facts["data_stays"] = downgrade_verdicts(
                project, list(facts["pending"]), settings)
    except UmbauError as exc:
        facts["reachable"] = False
        facts["problem"] = str(exc)[:120]
    return facts


def _rollback_method(plan: ReleasePlan, facts: dict[str, Any]) -> tuple[str, list[str]]:
    """(the rollback line, warnings) of the checklist."""
    if not facts["reachable"]:
        if plan.rollback != "auto":
            return plan.rollback, []
        return ("auto (downgrade when every pending revision has a downgrade that undoes "
                "it, else restore)"), []
    try:
        choice = choose_rollback(plan, facts["irreversible"], facts["data_stays"])
    except ReleasePlanError as exc:
        return f"{plan.rollback}: REFUSED", [str(exc)]
    warnings = list(choice.warnings)
    if choice.method == "restore":
        why = facts["irreversible"] or [f"revision {r}: {w}" for r, w in facts["data_stays"]]
        because = f" ({'; '.join(why)})" if why and plan.rollback == "auto" else ""
        return f"restore the pre-release backup{because}", warnings
    if plan.rollback == "auto":
        return ("downgrade (every pending revision has a downgrade)" if not choice.data_stays
                else "downgrade (no backup step to restore)"), warnings
    return "downgrade", warnings


def _estimate(step: Step, facts: dict[str, Any]) -> float | None:
    averages = facts["averages"]
    if step.name in averages:
        return float(averages[step.name])
    if f"kind:{step.kind}" in averages:
        return float(averages[f"kind:{step.kind}"])
    if step.kind == "migrate" and facts["history_mean"] is not None and facts["pending"]:
        return float(facts["history_mean"]) * len(facts["pending"])
    return None


def _describe(step: Step, backup_dir: Path, facts: dict[str, Any]) -> str:
    o = step.options
    if step.kind == "preflight":
        parts = ["server reachable", "pending revisions exist", "lint gate on the target "
                 "database", "free disk for the backup"]
        parts += [f"`{c}`" for c in o.get("commands", [])]
        return ", ".join(parts)
    if step.kind == "backup":
        return (f"pg_dump into `{backup_dir}`" + (", verified" if o.get("verify") else "")
                + (", restore-tested" if o.get("restore_test") else ""))
    if step.kind in ("command", "smoke"):
        return f"`{o['run']}` (timeout {format_duration(o.get('timeout'))})"
    if step.kind == "migrate":
        phase = f", phase {o['phase']}" if o.get("phase") else ""
        return f"umbau upgrade to {o.get('target', 'head')}{phase}"
    if step.kind == "backfill":
        return "run and wait for " + ", ".join(f"`{n}`" for n in o["names"])
    if step.kind == "env":
        parts = [f"{a} → {b}" for a, b in o.get("rename", {}).items()]
        parts += [f"remove {k}" for k in o.get("remove", [])]
        # an existing key is never overwritten (docs/release-steps.md)
        parts += [f"add {k}={v} (unless set)" for k, v in o.get("add", {}).items()]
        parts += [f"require {k}" for k in o.get("require", [])]
        return f"`{o['file']}`: " + ", ".join(parts)
    if step.kind == "cache":
        what = "FLUSHALL" if o.get("flushall") else ", ".join(f"`{p}`" for p in o["patterns"])
        return f"delete {what} in `{mask_url(o['url'])}`"
    if step.kind == "health":
        return (f"GET `{o['url']}` until {o['expect_status']} (every "
                f"{format_duration(o['interval'])}, at most {format_duration(o['deadline'])})")
    return step.kind


def _undo_text(step: Step, rollback: str) -> str | None:
    if step.kind == "env":
        return f"`{step.options['file']}` restored from the copy kept before the change"
    if step.kind == "command" and step.options.get("undo"):
        return f"`{step.options['undo']}`"
    if step.kind == "migrate":
        if rollback.startswith("restore"):
            return "the pre-release backup restored"
        if rollback.startswith("auto"):
            return ("downgrade to the revision before the release (or the pre-release "
                    "backup restored, when a pending revision has no downgrade)")
        return "downgrade to the revision before the release"
    if step.kind == "health":
        return "checked again after the rollback"
    return None
