"""Bad input to `umbau fleet`: one line that says what to do, a documented exit code,
and no change to any database; passwords never shown or stored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fleet_support import CONFIG, ETSY, RELEASE_1_0, Fleet, revision, targets_toml
from sqlalchemy import text

from umbau.cli import main
from umbau.errors import EXIT_DATABASE, EXIT_UNKNOWN_REVISION, EXIT_USAGE
from umbau.fleet.targets import (
    TargetSource,
    display_url,
    from_lines,
    from_template,
    resolve,
    select,
    stored_url,
)
from umbau.postgres.connect import connect

pytestmark = pytest.mark.db


def fleet_cli(*args: str) -> int:
    return main(["--config", str(CONFIG), "fleet", *args])


def no_fleet_tables(url: str) -> bool:
    with connect(url) as conn:
        return conn.execute(text("SELECT to_regclass('umbau_fleet_runs')")).scalar() is None


@pytest.mark.parametrize(("args", "message"), [
    ((), "no fleet targets: pass --targets FILE"),
    (("--targets", "/nonexistent/fleet.txt"), "cannot read the targets file"),
    (("--databases", "a"), "no fleet targets"),
    (("--url-template", "postgresql://u@h/{name}"), "--url-template needs --databases"),
    (("--worker",), "--worker joins a run: give its ID with --run"),
    (("--url-template", "postgresql://u@h/{name}", "--databases", "a",
      "--max-failure-rate", "lots"), "max_failure_rate = 'lots' is not a rate"),
    (("--url-template", "postgresql://u@h/{name}", "--databases", "a",
      "--parallel", "0"), "--parallel must be 1 or more"),
    (("--url-template", "postgresql://u@h/{name}", "--databases", "a,a"),
     "two targets are named 'a'"),
    (("--url-template", "postgresql://u@h/{name}", "--databases", "a", "--tags", "eu"),
     "no target has the tag(s) eu"),
    (("--url-template", "postgresql://u@h/{name}", "--databases", "a", "--canary", "b"),
     "--canary names no target b"),
    (("--targets-query", "SELECT 1"), "--targets-query runs against the control database"),
])
def test_bad_arguments_exit_2(args: tuple[str, ...], message: str,
                              capsys: pytest.CaptureFixture[str]) -> None:
    assert fleet_cli("upgrade", *args) == EXIT_USAGE
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_a_bad_targets_file_line_is_named(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "fleet.txt"
    path.write_text("# shops\npostgresql://u@h/a\nshop_b\n")
    assert fleet_cli("upgrade", "--targets", str(path)) == EXIT_USAGE
    assert f"{path}:3: expected one database URL per line" in capsys.readouterr().err


def test_an_unknown_target_revision_changes_nothing(make_fleet: Fleet, database_url: str,
                                                    tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    fleet = make_fleet(2)
    targets = str(targets_toml(tmp_path / "fleet.toml", fleet))
    assert fleet_cli("upgrade", "0000deadbeef", "--targets", targets, "--control-url",
                     database_url) == EXIT_UNKNOWN_REVISION
    assert [revision(u) for u in fleet.values()] == [RELEASE_1_0] * 2
    assert no_fleet_tables(database_url)


def test_an_unknown_canary_changes_nothing(make_fleet: Fleet, database_url: str,
                                           tmp_path: Path) -> None:
    fleet = make_fleet(1)
    targets = str(targets_toml(tmp_path / "fleet.toml", fleet))
    assert fleet_cli("upgrade", "--targets", targets, "--control-url", database_url,
                     "--canary", "nope") == EXIT_USAGE
    assert no_fleet_tables(database_url)


def test_an_unreachable_control_database_exits_5(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert fleet_cli("status", "--url-template", "postgresql://u@127.0.0.1:1/{name}",
                     "--databases", "a") == EXIT_DATABASE
    assert "cannot reach PostgreSQL at 127.0.0.1:1" in capsys.readouterr().err


def test_an_unknown_run_without_targets(database_url: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert fleet_cli("upgrade", "--run", "nope", "--control-url", database_url) == EXIT_USAGE
    assert "no fleet run 'nope' yet, and no targets to start it with" in \
        capsys.readouterr().err
    assert fleet_cli("status", "--run", "nope", "--control-url", database_url) == EXIT_USAGE


def test_a_joined_run_keeps_its_target_revision(make_fleet: Fleet, database_url: str,
                                                tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    fleet = make_fleet(1)
    targets = str(targets_toml(tmp_path / "fleet.toml", fleet))
    assert fleet_cli("upgrade", "6a2e4c81b3f5", "--run", "r", "--targets", targets,
                     "--control-url", database_url, "-q") == 0
    assert fleet_cli("upgrade", "c5f08b2a9e61", "--run", "r", "--targets", targets,
                     "--control-url", database_url) == EXIT_USAGE
    assert "run r upgrades to 6a2e4c81b3f5, not c5f08b2a9e61" in capsys.readouterr().err
    assert revision(next(iter(fleet.values()))) == "6a2e4c81b3f5"


def test_passwords_are_never_shown_or_stored(make_fleet: Fleet, database_url: str,
                                             tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    fleet = make_fleet(2, broken={1})
    # the test server trusts local connections: the password is carried, never checked
    with_password = {n: u.replace("postgres@", "postgres:s3cr3t-pw@") for n, u in fleet.items()}
    assert all("s3cr3t-pw" in u for u in with_password.values())
    targets = str(targets_toml(tmp_path / "fleet.toml", with_password))
    fleet_cli("upgrade", "--targets", targets, "--control-url", database_url,
              "--format", "json")
    fleet_cli("status", "--targets", targets, "--control-url", database_url)
    fleet_cli("status", "--control-url", database_url, "--format", "json")
    fleet_cli("status", "--targets", targets, "--control-url", database_url, "--format", "json")
    out = capsys.readouterr()
    assert "s3cr3t-pw" not in out.out + out.err
    assert "postgres:***@" in out.out
    with connect(database_url) as conn:
        dump = conn.execute(text("SELECT string_agg(t::text, ' ') FROM umbau_fleet_targets t"
                                 )).scalar()
    assert dump and "s3cr3t-pw" not in dump


def test_target_sources() -> None:
    lines = from_lines("# the shops\npostgresql://u:pw@h/a  # first\n\n"
                       "postgresql://u@h:5433/b\n", "t.txt")
    assert [(t.name, t.shown_url) for t in lines] == [("a", "postgresql://u:***@h/a"),
                                                      ("b", "postgresql://u@h:5433/b")]
    assert stored_url("postgresql://u:pw@h/a") == "postgresql://u@h/a"
    assert display_url("postgresql://u:p%40w@h/a") == "postgresql://u:***@h/a"
    plain = from_template("postgresql://u:pw@h:5433/template", ["x", "y"])
    assert [t.url for t in plain] == ["postgresql://u:pw@h:5433/x", "postgresql://u:pw@h:5433/y"]
    named = resolve(TargetSource(url_template="postgresql://u@h/shop_{name}",
                                 databases=("1", "2")))
    assert [(t.name, t.url) for t in named] == [("1", "postgresql://u@h/shop_1"),
                                                ("2", "postgresql://u@h/shop_2")]


def test_toml_targets_with_tags(tmp_path: Path) -> None:
    path = tmp_path / "fleet.toml"
    path.write_text('[[targets]]\nname = "a"\nurl = "postgresql://u@h/a"\ntags = ["eu", "beta"]\n'
                    '[[targets]]\nurl = "postgresql://u@h/b"\ntags = ["us"]\n')
    found = resolve(TargetSource(file=path))
    assert [(t.name, t.tags) for t in found] == [("a", ("eu", "beta")), ("b", ("us",))]
    assert [t.name for t in select(found, ["eu", "beta"])] == ["a"]


def test_fleet_settings_section(tmp_path: Path, make_fleet: Fleet, database_url: str,
                                capsys: pytest.CaptureFixture[str]) -> None:
    fleet = make_fleet(2)
    config = tmp_path / "umbau.toml"
    etsy = ETSY
    config.write_text(
        f'[tool.umbau]\nalembic_config = "{etsy / "alembic.ini"}"\n'
        f'[tool.umbau.fleet]\ncontrol_url = "{database_url}"\n'
        f'targets = {json.dumps([{"name": n, "url": u} for n, u in fleet.items()])}\n'
        .replace('{"name": ', '{name = ').replace(', "url": ', ', url = '))
    assert main(["--config", str(config), "fleet", "check"]) == 3
    assert main(["--config", str(config), "fleet", "upgrade", "-q"]) == 0
    assert main(["--config", str(config), "fleet", "check"]) == 0
    assert "2 target(s): 2 up-to-date" in capsys.readouterr().out
    config.write_text(config.read_text() + "paralel = 2\n")
    assert main(["--config", str(config), "fleet", "check"]) == EXIT_USAGE
    assert "unknown [tool.umbau.fleet] key(s) paralel" in capsys.readouterr().err


def test_the_public_surface_of_umbau_fleet() -> None:
    import umbau.fleet

    for name in umbau.fleet.__all__:
        assert getattr(umbau.fleet, name) is not None, name
