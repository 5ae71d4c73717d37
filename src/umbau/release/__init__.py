"""Releases: declarative plans that run step by step, record each step in
``umbau_releases``, roll back by themselves when a step fails, and resume after a crash.

::

    from umbau.release import release_plan, run_release

    print(release_plan(settings, "1.1.0").markdown)
    result = run_release(settings, "1.1.0", assume_yes=True, environ=os.environ)

See docs/release.md for the plan format and the rules.
"""

from __future__ import annotations

from umbau.release.checklist import release_plan
from umbau.release.envstep import migrate_env_for_release
from umbau.release.plan import ReleasePlan, Step, load_plan
from umbau.release.result import (
    Checklist,
    ReleaseHistory,
    ReleaseResult,
    ReleaseStatus,
    StepReport,
)
from umbau.release.runner import run_release
from umbau.release.status import release_history, release_status

__all__ = [
    "Checklist",
    "ReleaseHistory",
    "ReleasePlan",
    "ReleaseResult",
    "ReleaseStatus",
    "Step",
    "StepReport",
    "load_plan",
    "migrate_env_for_release",
    "release_history",
    "release_plan",
    "release_status",
    "run_release",
]
