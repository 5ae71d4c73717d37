"""The default control database: ``umbau_fleet`` on the first target's server, the
embedded one on request or when that server refuses CREATE DATABASE (not for workers
that other machines must find), never a silent switch when the first server is down."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from fleet_support import CONFIG, ETSY, HEAD, Fleet, control_rows, etsy_settings, revision
from sqlalchemy import text
from sqlalchemy.engine import make_url

from umbau.cli import main
from umbau.errors import DatabaseError, UsageError
from umbau.events import Event
from umbau.fleet import state
from umbau.fleet.control import CONTROL_DATABASE, control_database, embedded_folder
from umbau.fleet.targets import Target
from umbau.postgres.connect import connect
from umbau.postgres.scratch import database_url as url_of
from umbau.postgres.scratch import drop_database

pytestmark = [pytest.mark.db, pytest.mark.slow]


def fleet_cli(*args: str, config: Path = CONFIG) -> int:
    return main(["--config", str(config), "fleet", *args])


@pytest.fixture
def no_control_database(server_url: str) -> Iterator[str]:
    """The test server without ``umbau_fleet`` before and after the test."""
    drop_database(server_url, CONTROL_DATABASE)
    yield url_of(server_url, CONTROL_DATABASE)
    drop_database(server_url, CONTROL_DATABASE)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The Etsy settings in a folder of this test's own (its .umbau/ stays here)."""
    config = tmp_path / "umbau.toml"
    config.write_text(CONFIG.read_text())
    return config


def test_default_is_umbau_fleet_on_the_first_targets_server(
        make_fleet: Fleet, no_control_database: str, tmp_path: Path) -> None:
    fleet = make_fleet(2)
    listing = tmp_path / "fleet.txt"
    listing.write_text("\n".join(fleet.values()) + "\n")
    assert fleet_cli("upgrade", "--targets", str(listing), "--run", "default-control",
                     "-q") == 0
    assert control_rows(no_control_database, "default-control") == \
        dict.fromkeys(fleet, ("done", 1))
    # status and a joining worker with the same targets source find the same database
    assert fleet_cli("check", "--targets", str(listing)) == 0
    assert fleet_cli("upgrade", "--targets", str(listing), "--run", "default-control",
                     "--worker", "-q") == 0
    assert [revision(u) for u in fleet.values()] == [HEAD, HEAD]
    # the first target's own database and postgres got no fleet tables
    for url in (next(iter(fleet.values())), url_of(no_control_database, "postgres")):
        with connect(url) as conn:
            assert conn.execute(text("SELECT to_regclass('umbau_fleet_runs')")).scalar() is None


def test_the_first_target_of_the_source_decides_even_with_tags(
        server_url: str, no_control_database: str) -> None:
    real = url_of(server_url, "postgres")
    elsewhere = "postgresql://app@unreachable.invalid:5432/shop_b"
    settings = etsy_settings()
    with control_database(settings, None, [Target("a", real, ("eu",)),
                                           Target("b", elsewhere, ("us",))],
                          create=True) as found:
        assert found.origin == "first-target"
        assert make_url(found.url).database == CONTROL_DATABASE
        assert make_url(found.url).host == make_url(real).host
    # a first target that cannot be reached is an error, not a switch to another database
    # that workers on other machines would not find
    with pytest.raises(DatabaseError), control_database(
            settings, None, [Target("b", elsewhere), Target("a", real)], create=True):
        pass


def test_status_without_a_control_database_reads_the_targets(
        make_fleet: Fleet, no_control_database: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    fleet = make_fleet(1)
    listing = tmp_path / "fleet.txt"
    listing.write_text("\n".join(fleet.values()) + "\n")
    assert fleet_cli("status", "--targets", str(listing)) == 3  # pending, no run yet
    assert "fleet (no run yet)" in capsys.readouterr().out
    assert fleet_cli("status", "--targets", str(listing), "--run", "x") == 2
    assert "no fleet run 'x'" in capsys.readouterr().err
    with connect(url_of(no_control_database, "postgres")) as conn:  # status created nothing
        assert not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                {"n": CONTROL_DATABASE}).scalar()


@pytest.fixture
def role_without_createdb(server_url: str) -> Iterator[str]:
    """A login role that may connect but not create databases: its name."""
    name = f"fleet_nocreate_{uuid.uuid4().hex[:6]}"
    with connect(server_url, autocommit=True) as conn:
        conn.execute(text(f"CREATE ROLE {name} LOGIN NOCREATEDB"))
    yield name
    with connect(server_url, autocommit=True) as conn:
        conn.execute(text(f"DROP ROLE {name}"))


def test_no_createdb_falls_back_to_embedded_but_not_for_workers(
        server_url: str, no_control_database: str, role_without_createdb: str,
        tmp_path: Path) -> None:
    as_role = make_url(url_of(server_url, "postgres")).set(username=role_without_createdb)
    first = [Target("a", as_role.render_as_string(hide_password=False))]
    settings = replace(etsy_settings(), root=tmp_path)
    with pytest.raises(UsageError, match="createdb umbau_fleet"), control_database(
            settings, None, first, create=True, worker=True):
        pass
    events: list[Event] = []
    with control_database(settings, None, first, create=True,
                          on_event=events.append) as found:
        assert found.origin == "embedded"
        assert make_url(found.url).database == CONTROL_DATABASE
        with state.control(found.url) as conn:
            state.ensure_tables(conn)  # a working database
    assert embedded_folder(settings).is_dir()
    assert [e.kind for e in events] == ["note"]
    assert "only workers on this machine can join" in (events[0].message or "")


def test_control_url_embedded_and_status_without_arguments(
        make_fleet: Fleet, project: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    fleet = make_fleet(2)
    listing = tmp_path / "fleet.txt"
    listing.write_text("\n".join(fleet.values()) + "\n")
    assert fleet_cli("upgrade", "--targets", str(listing), "--control-url", "embedded",
                     "--run", "local", "-q", config=project) == 0
    assert (project.parent / ".umbau" / "fleet" / "pg").is_dir()
    capsys.readouterr()
    # later, on this machine, status needs no arguments: the run is in the embedded server
    assert fleet_cli("status", "--format", "json", config=project) == 0
    out = capsys.readouterr().out
    assert '"run_id": "local"' in out and '"state": "done"' in out
    assert not (ETSY / ".umbau" / "fleet").exists()  # beside the settings file only


def test_a_control_database_of_the_first_version_gets_the_new_columns(
        database_url: str) -> None:
    with connect(database_url) as conn:  # the tables as the first fleet version made them
        conn.execute(text("""
            CREATE TABLE umbau_fleet_runs (run_id text PRIMARY KEY,
                lock_key serial NOT NULL UNIQUE, target_revision text NOT NULL,
                state text NOT NULL DEFAULT 'running', max_failures int,
                created_by text NOT NULL, created_at timestamptz NOT NULL DEFAULT now(),
                finished_at timestamptz);
            CREATE TABLE umbau_fleet_targets (run_id text NOT NULL
                REFERENCES umbau_fleet_runs ON DELETE CASCADE, position int NOT NULL,
                name text NOT NULL, url text NOT NULL, tags text[] NOT NULL DEFAULT '{}',
                canary boolean NOT NULL DEFAULT false, state text NOT NULL DEFAULT 'pending',
                before_revision text, after_revision text, steps int, error text,
                exit_code int, attempts int NOT NULL DEFAULT 0, owner text, owner_pid int,
                owner_started timestamptz, lease_expires timestamptz,
                started_at timestamptz, finished_at timestamptz,
                PRIMARY KEY (run_id, name));
            INSERT INTO umbau_fleet_runs (run_id, target_revision, created_by)
                VALUES ('old', 'abc', 'test')"""))
        conn.commit()
    with state.control(database_url) as conn:
        state.ensure_tables(conn)
        old = state.require_run(conn, "old")
        assert (old.kind, old.target_revision, old.backfill) == ("upgrade", "abc", None)
        with state.creating(conn):
            new = state.create_run(conn, "new", state.Task("backfill", "m:b"),
                                   [Target("a", "postgresql://u@h/a")], [], None, "test")
        assert (new.kind, new.target_revision, new.backfill) == ("backfill", None, "m:b")
        assert state.targets(conn, "new")[0].rows is None
