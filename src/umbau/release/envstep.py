"""``umbau config migrate-env ENV_FILE --release VERSION``: a plan's env step alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from umbau.errors import ReleasePlanError
from umbau.release.plan import load_plan
from umbau.settings import Settings


def migrate_env_for_release(settings: Settings, env_file: Path, version: str, *,
                            plan_file: Path | None = None, dry_run: bool = False) -> Any:
    """Apply the env step of release ``version`` to ``env_file`` (not the step's own
    ``file``): the renames, removals, additions and required keys of that step.

    With several env steps in the plan, the one whose ``file`` is ``env_file`` is used.
    The old file is kept as ``<file>.before-<version>`` (an existing copy is kept as it
    is). Returns the :class:`umbau.release.envfile.EnvMigration`. Raises
    ReleasePlanError (no env step, or no single one for the file) and EnvFileError.
    """
    from umbau.release.envfile import migrate_env

    plan = load_plan(settings, version, plan_file)
    steps = [s for s in plan.steps if s.kind == "env"]
    path = Path(env_file).expanduser().resolve()
    if len(steps) > 1:
        steps = [s for s in steps if Path(s.options["file"]) == path]
    if len(steps) != 1:
        what = "no env step" if not steps else "several env steps, none for this file"
        raise ReleasePlanError(f"{plan.source}: release {version} has {what}: add "
                               f'[[releases."{version}".steps]] kind = "env"')
    options = steps[0].options
    return migrate_env(path, rename=dict(options["rename"]), remove=list(options["remove"]),
                       add=dict(options["add"]), require=list(options["require"]),
                       backup_path=path.with_name(f"{path.name}.before-{version}"),
                       dry_run=dry_run)
