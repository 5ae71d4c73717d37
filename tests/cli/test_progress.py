"""The one progress renderer (cli/render.progress) draws the events of every long
operation: plain lines in a pipe, a rich bar with rate and ETA on a terminal."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys

import pytest

from umbau.cli import render
from umbau.events import Event

EVENTS = [
    Event("plan", total=2, direction="upgrade"),
    Event("step_start", revision="r1", direction="upgrade", message="one"),
    Event("step_done", revision="r1", direction="upgrade", message="one", duration=0.002),
    Event("backup_start", message="/backups/x.dump", total=1),
    Event("backup_table", message="public.orders"),
    Event("backfill_progress", message="backfill bump", done=500, total=1000, unit="rows",
          rate=250.0, eta=2.0),
    Event("backfill_progress", message="backfill bump", done=1000, total=1000, unit="rows",
          rate=250.0, eta=0.0),
]


def test_plain_lines_for_every_kind_of_operation(capsys: pytest.CaptureFixture[str]) -> None:
    with render.progress() as handle:
        for event in EVENTS:
            handle(event)
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "upgrade   r1  one  [2 ms]",
        "backing up into /backups/x.dump (1 table(s) with data)",
        "  dumped public.orders",
        # a counted operation logs at most every LOG_EVERY seconds: the second is held back
        "backfill bump: 500/1000 rows, 250 rows/s, ETA 2s",
    ]


def test_quiet_draws_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    with render.progress(quiet=True) as handle:
        for event in EVENTS:
            handle(event)
    assert capsys.readouterr() == ("", "")


_ON_A_TERMINAL = """
import time
from umbau.cli import render
from umbau.events import Event
with render.progress() as handle:
    handle(Event("backfill_progress", message="backfill bump", done=400, total=1000,
                 unit="rows", rate=200.0, eta=3.0))
    time.sleep(0.5)  # rich redraws ten times a second
    handle(Event("plan", total=2, direction="upgrade"))
    handle(Event("step_done", revision="r1", direction="upgrade", message="one",
                 duration=0.002))
    time.sleep(0.5)
"""


def test_a_bar_with_rate_and_eta_on_a_terminal() -> None:
    controller, terminal = pty.openpty()
    env = {**os.environ, "COLUMNS": "120", "TERM": "xterm"}
    with subprocess.Popen([sys.executable, "-c", _ON_A_TERMINAL], stderr=terminal,
                          stdout=subprocess.DEVNULL, env=env) as proc:
        os.close(terminal)
        chunks = []
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.wait(timeout=60) == 0
    os.close(controller)
    drawn = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode("utf-8", "replace"))
    assert "backfill bump" in drawn and "400/1000" in drawn and "200 rows/s" in drawn
    assert "ETA 0:00:03" in drawn and "1/2" in drawn  # each phase counts on its own
    assert "upgrade   r1  one  [2 ms]" in drawn  # lines worth keeping print above the bar


def test_help_does_not_import_rich_progress() -> None:
    probe = ("import sys\nfrom umbau.cli import main\nmain(['--help'])\n"
             "print('rich.progress' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip().endswith("False")


def test_release_steps_and_health_retries_are_drawn() -> None:
    assert render.describe(Event("release_step_start", message="smoke")) == "-> smoke"
    assert render.describe(Event(
        "health_attempt", message="http://127.0.0.1:8000/health: status 503", attempt=2,
        delay=1.0)) == ("   health: http://127.0.0.1:8000/health: status 503; again in 1.0s "
                        "(attempt 2)")
    assert render.describe(Event(
        "release_step_done", message="smoke", duration=2.25,
        data={"outcome": "failed"}, error="exit 1")) == "   smoke: failed [2.2s]: exit 1"
