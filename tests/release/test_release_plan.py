"""Release plans: where they are read from, and every mistake as one line (exit 37)."""

from __future__ import annotations

from pathlib import Path

import pytest

from umbau.errors import ReleasePlanError
from umbau.release import load_plan
from umbau.settings import Settings, load_settings

GOOD = """
[releases."1.1.0"]
from = "1.0.0"
rollback = "restore"
[[releases."1.1.0".steps]]
kind = "backup"
[[releases."1.1.0".steps]]
kind = "command"
run = "systemctl stop app"
undo = "systemctl start app"
timeout = "90s"
[[releases."1.1.0".steps]]
kind = "command"
run = "docker compose pull"
[[releases."1.1.0".steps]]
kind = "migrate"
phase = "pre"
[[releases."1.1.0".steps]]
kind = "health"
url = "http://127.0.0.1:8000/health"
deadline = "2min"
"""


def settings(folder: Path) -> Settings:
    return load_settings(cwd=folder, environ={})


def test_a_good_plan(tmp_path: Path) -> None:
    (tmp_path / "releases.toml").write_text(GOOD)
    plan = load_plan(settings(tmp_path), "1.1.0")
    assert plan.from_version == "1.0.0" and plan.rollback == "restore"
    assert [s.name for s in plan.steps] == ["backup", "command 1", "command 2", "migrate",
                                            "health"]
    assert plan.steps[1].options["timeout"] == 90.0
    assert plan.steps[1].options["cwd"] == str(tmp_path)
    assert plan.steps[2].options["timeout"] == 3600.0
    assert plan.steps[3].options == {"target": "head", "phase": "pre"}
    assert plan.steps[4].options["deadline"] == 120.0
    assert plan.steps[4].options["interval"] == 1.0
    assert plan.fingerprint == load_plan(settings(tmp_path), "1.1.0").fingerprint
    # every plan-level setting that changes what a run does is in the fingerprint
    (tmp_path / "releases.toml").write_text(GOOD.replace('rollback = "restore"',
                                                         'rollback = "downgrade"'))
    assert plan.fingerprint != load_plan(settings(tmp_path), "1.1.0").fingerprint


def test_plan_in_pyproject_and_given_file(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.umbau]\n[tool.umbau.releases."2.0"]\n'
        '[[tool.umbau.releases."2.0".steps]]\nkind = "smoke"\nrun = "true"\n')
    plan = load_plan(settings(tmp_path), "2.0")
    assert plan.source == str(tmp_path / "pyproject.toml") and plan.steps[0].kind == "smoke"
    other = tmp_path / "sub" / "plan.toml"
    other.parent.mkdir()
    other.write_text(GOOD)
    plan = load_plan(settings(tmp_path), "1.1.0", other)
    assert plan.folder == other.parent and plan.steps[1].options["cwd"] == str(other.parent)


@pytest.mark.parametrize(("text", "message"), [
    (GOOD.replace('rollback = "restore"', 'rollback = "pray"'),
     r"releases.toml: release 1.1.0: rollback = 'pray': use one of auto, downgrade, restore"),
    (GOOD.replace('kind = "backup"', 'kind = "bakup"'),
     r"release 1.1.0: step 1: kind = 'bakup': use one of preflight, backup"),
    (GOOD.replace('timeout = "90s"', 'timeout = "soon"'),
     r"release 1.1.0: step 2 \(command 1\): timeout = 'soon' is not a duration"),
    (GOOD.replace('undo = "systemctl start app"', 'undo_cmd = "x"'),
     r"step 2 \(command 1\): unknown key\(s\) undo_cmd for a command step \(known: run, "
     r"timeout, undo\)"),
    (GOOD.replace('url = "http://127.0.0.1:8000/health"', ""),
     r"step 5 \(health\): a health step needs url"),
    (GOOD.replace('phase = "pre"', 'phase = "during"'),
     r"step 4 \(migrate\): phase = 'during': use pre or post"),
    (GOOD + '[releases."1.1.0".oops]\n', r"release 1.1.0: unknown key\(s\) oops"),
    ('[releases."1.1.0"]\nfrom = "1.0"\n', r"release 1.1.0: no steps"),
    (GOOD.replace("[[releases", "[[release", 1), r"unknown top-level key\(s\) release"),
    ("[releases\n", r"fix the TOML syntax"),
    (GOOD.replace('kind = "command"\nrun = "docker compose pull"',
                  'kind = "command"\nname = "command 1"\nrun = "x"'),
     r"step 3: the name 'command 1' is used twice"),
])
def test_bad_plans_are_one_line_naming_file_version_and_step(tmp_path: Path, text: str,
                                                             message: str) -> None:
    (tmp_path / "releases.toml").write_text(text)
    with pytest.raises(ReleasePlanError, match=message) as caught:
        load_plan(settings(tmp_path), "1.1.0")
    assert caught.value.exit_code == 37
    assert "\n" not in str(caught.value)


def test_missing_version_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ReleasePlanError, match=r"no release plan: write .*releases.toml"):
        load_plan(settings(tmp_path), "1.1.0")
    (tmp_path / "releases.toml").write_text(GOOD)
    with pytest.raises(ReleasePlanError, match=r"no release '9.9' \(known: 1.1.0\)"):
        load_plan(settings(tmp_path), "9.9")
    with pytest.raises(ReleasePlanError, match=r"plan file .*nope.toml does not exist"):
        load_plan(settings(tmp_path), "1.1.0", tmp_path / "nope.toml")
