"""umbau backup: names, manifest, permissions, selections, refusals that leave nothing."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest
from backup_support import table_checksums

from umbau.backup.dump import DumpOptions, backup
from umbau.backup.restore import restore
from umbau.errors import BackupFailed, InsufficientDiskSpace, UsageError
from umbau.settings import Settings


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_custom_backup_writes_dump_and_manifest(settings: Settings, tmp_path: Path) -> None:
    result = backup(settings)
    folder = tmp_path / "backups"
    assert result.path.parent == folder
    assert re.fullmatch(r"umbau_test_[0-9a-f]{12}_\d{8}T\d{6}Z_r2\.dump", result.path.name)
    assert result.manifest_file == folder / (result.path.name[:-5] + ".json")
    assert _mode(folder) == 0o700 and _mode(result.path) == 0o600
    assert _mode(result.manifest_file) == 0o600
    m = result.manifest
    assert m["revision"] == ["r2"] and m["format"] == "custom"
    assert m["server_version"].split(".")[0].isdigit()
    assert m["size"] == result.path.stat().st_size and len(m["sha256"]) == 64
    assert m["tables"]["public.customers"] == {"rows": 300, "exact": True,
                                               "bytes": m["tables"]["public.customers"]["bytes"]}
    assert m["tables"]["public.orders"]["rows"] == 1200
    assert m["verification"] is None and m["duration_s"] >= 0
    assert not list(folder.glob("*.partial"))


def test_counts_above_the_threshold_are_estimates(settings: Settings) -> None:
    small = Settings(database_url=settings.database_url, root=settings.root,
                     sections={"backup": {"exact_count_below": 0}})
    m = backup(small).manifest
    assert all(t["exact"] is False for t in m["tables"].values())


def test_round_trip_custom_and_directory(settings: Settings, make_database) -> None:
    before = table_checksums(settings.database_url)
    for options in (DumpOptions(), DumpOptions(format="directory", jobs=2)):
        result = backup(settings, options)
        target = make_database()
        restored = restore(settings, result.path, database_url=target)
        assert restored.revision == ("r2",)
        assert table_checksums(target) == {**before, "public.umbau_history":
                                           table_checksums(target)["public.umbau_history"]}
    assert (tmp := result.path).is_dir() and _mode(tmp) == 0o700
    assert all(_mode(p) == 0o600 for p in tmp.iterdir())


def test_schema_only_data_only_and_table_selection(settings: Settings) -> None:
    schema = backup(settings, DumpOptions(schema_only=True)).manifest
    assert schema["tables"] == {} and schema["options"]["schema_only"]
    only = backup(settings, DumpOptions(tables=("customers",))).manifest
    assert set(only["tables"]) == {"public.customers"}
    rest = backup(settings, DumpOptions(exclude_tables=("orders",), data_only=True)).manifest
    assert "public.orders" not in rest["tables"] and "public.customers" in rest["tables"]


def test_two_backups_in_the_same_second_get_distinct_names(settings: Settings) -> None:
    first, second = backup(settings), backup(settings)
    assert first.path != second.path and first.manifest_file != second.manifest_file


def test_too_little_disk_refuses_with_both_figures(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(InsufficientDiskSpace) as caught:
        backup(settings, free_space=lambda folder: 1024)
    assert "1 KiB" not in str(caught.value)  # figures are in MiB, both of them
    assert re.search(r"0\.0 MiB free, [\d.,]+ MiB needed", str(caught.value))
    assert caught.value.free == 1024 and caught.value.needed > 1024
    assert list((tmp_path / "backups").iterdir()) == []


def test_failed_pg_dump_leaves_nothing(settings: Settings, tmp_path: Path) -> None:
    # A pattern (a name is checked before pg_dump starts): pg_dump itself fails.
    with pytest.raises(BackupFailed, match="pg_dump failed"):
        backup(settings, DumpOptions(tables=("no_such_*",)))
    assert list((tmp_path / "backups").iterdir()) == []


@pytest.mark.parametrize("options, message", [
    (DumpOptions(schema_only=True, data_only=True), "exclude each other"),
    (DumpOptions(jobs=2), "--jobs needs --format directory"),
])
def test_bad_options(settings: Settings, options: DumpOptions, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        backup(settings, options)


def test_cli_backup_json_and_directory_verify(settings: Settings, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from umbau.backup.verify import verify
    from umbau.cli import main

    folder = tmp_path / "cli"
    code = main(["--database-url", settings.database_url, "backup", "--format", "directory",
                 "--jobs", "2", "--dir", str(folder), "--json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    path = Path(data["path"])
    assert path.is_dir() and data["manifest"]["options"]["jobs"] == 2
    assert verify(settings, path).ok
    biggest = max(path.glob("*.dat.gz"), key=lambda p: p.stat().st_size)
    biggest.write_bytes(biggest.read_bytes()[:40])  # a truncated table file
    checked = verify(settings, path)
    assert checked.checksum_ok is False and not checked.archive_ok


def test_rewrites_are_found() -> None:
    from umbau.sql import rewritten_objects

    found = rewritten_objects("ALTER TABLE t ALTER COLUMN c TYPE bigint; UPDATE t SET c = 1; "
                              "DELETE FROM t WHERE c = 2; DELETE FROM u; SELECT 1;")
    assert found == ["alter column type t.c", "update t", "delete from t"]


def test_an_unusable_backup_folder_is_a_clear_error(settings: Settings, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(BackupFailed, match="cannot use the backup folder"):
        backup(settings, directory=blocker / "sub")


def test_wildcard_tables_are_counted_as_pg_dump_matches_them(settings: Settings) -> None:
    m = backup(settings, DumpOptions(tables=("public.cust*", "ORDER?"))).manifest
    assert set(m["tables"]) == {"public.customers", "public.orders"}
    m = backup(settings, DumpOptions(exclude_tables=("*_state", '"alembic_version"'))).manifest
    assert set(m["tables"]) == {"public.customers", "public.orders"}


def test_partitioned_tables_are_counted_with_their_partitions(settings: Settings) -> None:
    from backup_support import fill

    fill(settings.database_url, """
        CREATE TABLE events (id int, at date NOT NULL) PARTITION BY RANGE (at);
        CREATE TABLE events_a PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
        CREATE TABLE events_b PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
        INSERT INTO events SELECT g, '2024-12-01'::date + g FROM generate_series(1, 90) g;
    """)
    result = backup(settings)
    events = result.manifest["tables"]["public.events"]
    assert events["rows"] == 90 and events["exact"] and events["bytes"] > 0
    assert "public.events_a" not in result.manifest["tables"]
    from umbau.backup.verify import verify

    checked = verify(settings, result.path, restore_test=True)
    assert checked.ok and checked.restore_test is not None
    assert checked.restore_test.tables["public.events"]["actual"] == 90


@pytest.mark.parametrize("where", ["pg_dump", "manifest"])
def test_an_interrupted_backup_leaves_nothing(settings: Settings, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch,
                                              where: str) -> None:
    from umbau.backup import manifest, pg
    from umbau.postgres import dumpcatalog

    started: list[object] = []
    real_run = pg.run

    def run(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        proc = real_run(*args, **kwargs)  # type: ignore[arg-type]
        started.append(proc)
        return proc

    def interrupt(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(pg, "run", run)
    if where == "pg_dump":  # Ctrl-C while the rows are counted and pg_dump runs
        monkeypatch.setattr(dumpcatalog, "row_counts", interrupt)
    else:  # Ctrl-C after the rename, while the manifest is written
        monkeypatch.setattr(manifest, "write_json", interrupt)
    with pytest.raises(KeyboardInterrupt):
        backup(settings)
    assert list((tmp_path / "backups").iterdir()) == []
    assert started and all(p.poll() is not None for p in started)  # type: ignore[attr-defined]


def test_the_password_reaches_pg_dump_only_through_the_environment(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from umbau.postgres import clients

    seen: list[tuple[list[str], dict[str, str]]] = []
    real = clients.spawn

    def spawn(args, *rest, **kwargs):  # type: ignore[no-untyped-def]
        seen.append((list(args), dict(kwargs.get("env") or {})))
        return real(args, *rest, **kwargs)

    monkeypatch.setattr(clients, "spawn", spawn)
    # The test server trusts local connections: the password is carried, not checked.
    from sqlalchemy.engine import make_url

    base = make_url(settings.database_url)
    for url in (base.update_query_dict({"password": "s3cret-in-query"}),
                base.set(password="s3cret-in-user")):
        url = url.render_as_string(hide_password=False)
        result = backup(settings, database_url=url)
        assert "s3cret" not in result.manifest_file.read_text()
        restored = restore(settings, result.path, database_url=url, clean=True, yes=True)
        assert "s3cret" not in str(restored.as_dict())
    dumps = [(a, e) for a, e in seen if Path(a[0]).name in ("pg_dump", "pg_restore")]
    assert dumps and all(not any("s3cret" in x for x in a) for a, _ in dumps)
    # Every run that connects (pg_restore --list of the owner check reads a file only).
    connecting = [e for a, e in dumps if "--dbname" in a]
    assert connecting and all(e.get("PGPASSWORD", "").startswith("s3cret") for e in connecting)


def test_cli_backup_format_json_like_every_command(settings: Settings, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from umbau.cli import main

    folder = tmp_path / "cli"
    base = ["--database-url", settings.require_database_url(), "backup", "--dir", str(folder)]
    assert main([*base, "--format", "json", "--dump-format", "directory"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert Path(data["path"]).is_dir() and data["manifest"]["format"] == "directory"
    assert data["cleaned"] == []
    assert main([*base, "--json"]) == 0  # the old flag, kept as a hidden alias
    assert json.loads(capsys.readouterr().out)["manifest"]["format"] == "custom"
    assert main(["backup", "--help"]) == 0
    assert "--json" not in capsys.readouterr().out
