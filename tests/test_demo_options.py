"""Bad `umbau demo` options: a one-line usage error (exit 2), no traceback, no server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from umbau.cli import main
from umbau.commands.demo import demo, demo_release
from umbau.errors import UsageError
from umbau.settings import load_settings


@pytest.mark.parametrize("args", [
    ["--orders", "0"],
    ["--orders", "-5"],
    ["--release", "--orders", "-5"],
    ["--release", "--orders", "0"],
    ["--orders", "many"],
    ["--fail-smoke"],
    ["--format", "yaml"],
    ["--no-such-option"],
])
def test_a_bad_demo_option_is_a_one_line_usage_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        args: list[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["demo", *args]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.count("\n") == 0 and err and "Traceback" not in captured.err
    assert not (tmp_path / ".umbau").exists()  # no server started, nothing made


def test_a_folder_that_cannot_be_made_is_a_usage_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert main(["demo", "--folder", str(a_file)]) == 2  # a file, refused by the option
    assert "is a file" in capsys.readouterr().err
    for args in (["--folder", str(a_file / "sub")],
                 ["--release", "--folder", str(a_file / "sub"), "--format", "json"]):
        code = main(["demo", *args])
        captured = capsys.readouterr()
        assert code == 2 and "Traceback" not in captured.err
        text = captured.out if "json" in args else captured.err
        message = (json.loads(text)["error"]["message"] if "json" in args else text.strip())
        assert "cannot use" in message and "--folder" in message and "\n" not in message
    assert a_file.read_text() == "x"


def test_the_library_refuses_the_same_before_starting_a_server(tmp_path: Path) -> None:
    settings = load_settings(environ={}, flags={})
    with pytest.raises(UsageError, match="at least 1, not 0"):
        demo(settings, folder=tmp_path / "d", orders=0)
    with pytest.raises(UsageError, match="--release --orders 1000"):
        demo_release(settings, folder=tmp_path / "d", orders=-5)
    assert not (tmp_path / "d").exists()
