"""No password of a URL reaches the checklist, the results or umbau_releases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from release_support import release_project, settings, umbau, write_plan
from sqlalchemy import text

from umbau.errors import ReleaseFailed
from umbau.postgres.connect import connect
from umbau.release import release_history, release_plan, release_status, run_release

pytestmark = pytest.mark.db

PLAN = """
STEP
kind = "health"
url = "http://admin:HealthPW@127.0.0.1:9/health"
deadline = "1s"
interval = "100ms"
STEP
kind = "command"
name = "notify"
run = "echo notified postgresql://ops:CmdPW@db.example/shop"
undo = "echo undone https://bot:UndoPW@chat.example/hook"
STEP
kind = "smoke"
run = "echo failing postgresql://app:OutPW@db.example/shop; exit 3"
"""
SECRETS = ("HealthPW", "CmdPW", "UndoPW", "OutPW")


def _clean(value: object) -> None:
    dumped = value if isinstance(value, str) else json.dumps(value, default=str)
    for secret in SECRETS:
        assert secret not in dumped, secret


def test_every_output_masks_passwords(tmp_path: Path, database_url: str) -> None:
    folder = release_project(tmp_path, database_url)
    write_plan(folder, PLAN)
    checklist = release_plan(settings(folder, database_url), "1.1.0")
    assert "http://admin:***@127.0.0.1:9/health" in checklist.markdown
    _clean(checklist.markdown)
    _clean(checklist.as_dict())
    shown = umbau(folder, database_url, "release", "plan", "1.1.0")
    out, _ = shown.communicate(timeout=60)
    assert "admin:***@" in out
    _clean(out)
    dry = run_release(settings(folder, database_url), "1.1.0", dry_run=True)
    _clean(dry.as_dict())
    # a run whose health step passes (another plan) and whose smoke test fails
    write_plan(folder, PLAN.replace("STEP\nkind = \"health\"\n"
                                    "url = \"http://admin:HealthPW@127.0.0.1:9/health\"\n"
                                    "deadline = \"1s\"\ninterval = \"100ms\"\n", ""),
               version="1.2.0")
    with pytest.raises(ReleaseFailed) as caught:
        run_release(settings(folder, database_url), "1.2.0")
    _clean(str(caught.value))
    assert caught.value.result is not None
    _clean(caught.value.result.as_dict())
    _clean(release_history(settings(folder, database_url)).as_dict())
    _clean(release_status(settings(folder, database_url)).as_dict())
    with connect(database_url) as conn:
        stored = conn.execute(text("SELECT error, detail::text FROM umbau_releases")).all()
    _clean([list(r) for r in stored])
