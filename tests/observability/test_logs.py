"""JSON log lines (``--log-format json``) from events, and the progress renderer's hooks."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime

import pytest

from umbau.cli import render
from umbau.events import Event
from umbau.observability.logs import JsonLog, level_of, timestamp


def test_one_json_line_per_event_with_ts_level_logger_command() -> None:
    stream = io.StringIO()
    log = JsonLog("upgrade", stream=stream,
                  clock=lambda: datetime(2026, 11, 30, 19, 42, 48, 123456, tzinfo=UTC))
    log(Event("step_done", revision="r1", direction="upgrade", duration=0.25))
    log(Event("retry", revision="r1", attempt=1, delay=0.5, error="lock timeout"))
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0] == {"ts": "2026-11-30T19:42:48.123Z", "level": "info", "logger": "umbau",
                        "command": "upgrade", "kind": "step_done", "revision": "r1",
                        "direction": "upgrade", "duration": 0.25}
    assert lines[1]["level"] == "warning" and lines[1]["attempt"] == 1


def test_passwords_are_masked_in_the_whole_line() -> None:
    stream = io.StringIO()
    log = JsonLog("copy", stream=stream)
    log(Event("copy_step", message="copying from postgresql://app:s3cret@db/prod",
              data={"url": "postgresql://app:s3cret@db/prod?password=s3cret"}))
    log.error("DatabaseUnreachable", 5, "cannot reach postgresql://app:s3cret@db/prod")
    text = stream.getvalue()
    assert "s3cret" not in text
    assert [json.loads(line)["kind"] for line in text.splitlines()] == ["copy_step", "error"]


def test_levels() -> None:
    assert level_of(Event("step_failed")) == "error"
    assert level_of(Event("lock_wait")) == "warning"
    assert level_of(Event("release_step_done", data={"outcome": "failed"})) == "error"
    assert level_of(Event("step_done")) == "info"


@pytest.mark.parametrize(("event", "level"), [
    # every kind docs/observability.md names: failures, waits, retries, blockers, rollbacks
    (Event("step_failed", error="x"), "error"),
    (Event("fleet_target_failed", error="x", data={"exit_code": 7}), "error"),
    (Event("fleet_target", message="t1: failed", error="boom"), "error"),
    (Event("fleet_target", message="t1: done"), "info"),
    (Event("release_step_done", data={"outcome": "failed"}), "error"),
    (Event("release_step_done", data={"outcome": "undo_failed"}), "error"),
    (Event("release_step_done", data={"outcome": "undone"}), "warning"),
    (Event("release_step_done", data={"outcome": "done"}), "info"),
    (Event("release_step_done", data={"outcome": "skipped"}), "info"),
    (Event("lock_wait"), "warning"),
    (Event("old_lock_holders"), "warning"),
    (Event("retry", attempt=2, error="deadlock"), "warning"),
    (Event("health_attempt", attempt=1, error="503"), "warning"),
    (Event("blockers_cancelled"), "warning"),
    (Event("invalid_index_dropped"), "warning"),
    (Event("rollback_skipped"), "warning"),
    (Event("rollback_restore"), "warning"),
    # the release runner's rollback stages, as it words them
    (Event("stage", message="rolling back release 1.1.0: step 'smoke' failed"), "warning"),
    (Event("stage", message="rollback: undo 'migrate'"), "warning"),
    (Event("stage", message="rollback: restoring before-1.1.0.dump"), "warning"),
    (Event("stage", message="finishing the rollback of run 3 (step smoke had failed)"),
     "warning"),
    (Event("stage", message="resuming run 3: step 'migrate' was interrupted (rollback)"),
     "warning"),
    (Event("stage", message="resuming run 3 at step 4"), "info"),
    (Event("stage", message="creating the Etsy example at 1.0.0"), "info"),
    (Event("stage", message="backup", data={"level": "warning"}), "warning"),
    (Event("message", message="warning: the backup is slow"), "warning"),
    (Event("message", message="umbau: error: t2 failed"), "error"),
    (Event("message", message="This downgrade drops data:"), "info"),
    (Event("step_done"), "info"),
    (Event("note", message="nothing to roll"), "info"),
])
def test_the_level_follows_the_event(event: Event, level: str) -> None:
    assert level_of(event) == level


def test_timestamp_is_utc_iso8601() -> None:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", timestamp())


def test_progress_feeds_sinks_even_when_quiet(capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[str] = []
    render.SINKS.append(lambda event: seen.append(event.kind))
    try:
        with render.progress(quiet=True) as handle:
            handle(Event("step_done", revision="r1", direction="upgrade", duration=0.001))
        with render.progress() as handle:
            handle(Event("step_done", revision="r2", direction="upgrade", duration=0.001))
    finally:
        render.SINKS.clear()
    assert seen == ["step_done", "step_done"]
    assert capsys.readouterr().err.splitlines() == ["upgrade   r2    [1 ms]"]


def test_json_log_replaces_the_display(capsys: pytest.CaptureFixture[str]) -> None:
    render.JSON_LOG = JsonLog("upgrade")
    try:
        with render.progress() as handle:
            handle(Event("step_done", revision="r1", direction="upgrade", duration=0.001))
    finally:
        render.JSON_LOG = None
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and json.loads(err[0])["kind"] == "step_done"


def test_plain_stderr_lines_become_json_messages(capsys: pytest.CaptureFixture[str]) -> None:
    render.JSON_LOG = JsonLog("backup")
    try:
        render.line("warning: postgresql://app:pw@db/x is slow", stderr=True)
        render.line("to stdout")
    finally:
        render.JSON_LOG = None
    out, err = capsys.readouterr()
    assert out == "to stdout\n"
    record = json.loads(err)
    assert record["kind"] == "message" and record["command"] == "backup"
    assert "pw@" not in record["message"]
