"""The release env step: umbau.release.envfile (pure file work, no server)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from umbau.errors import EnvFileError
from umbau.release.envfile import (
    format_value,
    migrate_env,
    parse_env,
    plan_env_migration,
    read_env,
    restore_env,
)

ETSY_100 = """\
# Etsy -> sevDesk sync, release 1.0.0
DATABASE_URL=postgresql://etsy:s3cret@db:5432/etsy   # the app's database

export ETSY_API_KEY="abc\\"def"
ETSY_SHOP_ID='12345678'
# sevDesk
SEVDESK_API_TOKEN=tok#en
SYNC_INTERVAL = 300
"""


def write(tmp_path: Path, text: str, mode: int = 0o640) -> Path:
    path = tmp_path / ".env"
    path.write_bytes(text.encode("utf-8"))
    path.chmod(mode)
    return path


def test_parse_reads_the_dialects_and_gives_the_text_back(tmp_path: Path) -> None:
    text = ETSY_100 + 'MULTI="line one\nline two"  # two lines\nBARE\nEMPTY=\n'
    entries = parse_env(text)
    assert "".join(e.raw for e in entries) == text
    values = read_env(write(tmp_path, text))
    assert values == {
        "DATABASE_URL": "postgresql://etsy:s3cret@db:5432/etsy",
        "ETSY_API_KEY": 'abc"def',
        "ETSY_SHOP_ID": "12345678",
        "SEVDESK_API_TOKEN": "tok#en",
        "SYNC_INTERVAL": "300",
        "MULTI": "line one\nline two",
        "EMPTY": "",
    }


def test_the_etsy_rename_keeps_value_position_and_everything_else(tmp_path: Path) -> None:
    path = write(tmp_path, ETSY_100)
    backup = tmp_path / "env.bak"
    result = migrate_env(path, rename={"ETSY_SHOP_ID": "ETSY_DEFAULT_SHOP_ID"},
                         require=["DATABASE_URL", "ETSY_DEFAULT_SHOP_ID"], backup_path=backup)
    assert path.read_text() == ETSY_100.replace("ETSY_SHOP_ID=", "ETSY_DEFAULT_SHOP_ID=")
    assert backup.read_text() == ETSY_100
    assert result.renamed == [("ETSY_SHOP_ID", "ETSY_DEFAULT_SHOP_ID")]
    assert result.changes == ["renamed ETSY_SHOP_ID → ETSY_DEFAULT_SHOP_ID"]
    assert result.written and result.backup_path == backup
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert result.as_dict()["renamed"] == [["ETSY_SHOP_ID", "ETSY_DEFAULT_SHOP_ID"]]


ABLAGE_09 = """\
DATABASE_URL=postgresql://ablage@db/ablage
OCR_ENGINE=tesseract
MAX_FILE_SIZE=50
# cache
REDIS_URL=redis://redis:6379/0
LEGACY_MODE=true
export OLD_API_ENABLED=1
SECRET_KEY='x y z'"""  # no newline at the end


def test_the_ablage_changes(tmp_path: Path) -> None:
    path = write(tmp_path, ABLAGE_09, mode=0o600)
    result = migrate_env(
        path,
        rename={"OCR_ENGINE": "OCR_BACKEND", "MAX_FILE_SIZE": "MAX_UPLOAD_SIZE_MB",
                "REDIS_URL": "REDIS_DSN"},
        remove=["LEGACY_MODE", "OLD_API_ENABLED"],
        add={"OCR_TIMEOUT_SECONDS": "300", "ENABLE_WEBHOOKS": "true"},
        require=["DATABASE_URL", "REDIS_DSN"])
    assert path.read_text() == (
        "DATABASE_URL=postgresql://ablage@db/ablage\n"
        "OCR_BACKEND=tesseract\n"
        "MAX_UPLOAD_SIZE_MB=50\n"
        "# cache\n"
        "REDIS_DSN=redis://redis:6379/0\n"
        "SECRET_KEY='x y z'\n"
        "OCR_TIMEOUT_SECONDS=300\n"
        "ENABLE_WEBHOOKS=true\n")
    assert result.removed == ["LEGACY_MODE", "OLD_API_ENABLED"]
    assert result.added == [("OCR_TIMEOUT_SECONDS", "300"), ("ENABLE_WEBHOOKS", "true")]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # the default backup sits beside the file, named with a UTC timestamp
    assert result.backup_path is not None and result.backup_path.parent == tmp_path
    assert result.backup_path.name.startswith(".env.umbau-")
    assert result.backup_path.read_text() == ABLAGE_09


def test_default_backups_never_overwrite_each_other(tmp_path: Path) -> None:
    path = write(tmp_path, "A=1\nC=3\n")
    first = migrate_env(path, rename={"A": "B"}).backup_path
    second = migrate_env(path, rename={"C": "D"}).backup_path
    assert first is not None and second is not None and first != second
    assert first.read_text() == "A=1\nC=3\n" and second.read_text() == "B=1\nC=3\n"


def test_a_second_run_is_the_first_one(tmp_path: Path) -> None:
    path = write(tmp_path, ABLAGE_09)
    kwargs = dict(rename={"OCR_ENGINE": "OCR_BACKEND"}, remove=["LEGACY_MODE"],
                  add={"ENABLE_WEBHOOKS": "true"})
    backup = tmp_path / "keep.bak"
    migrate_env(path, **kwargs, backup_path=backup)  # type: ignore[arg-type]
    once = path.read_bytes()
    again = migrate_env(path, **kwargs, backup_path=backup)  # type: ignore[arg-type]
    assert path.read_bytes() == once
    assert not again.changed and not again.written
    assert again.unchanged == ["OCR_BACKEND", "ENABLE_WEBHOOKS"]
    assert again.absent == ["LEGACY_MODE"]
    # the backup of the first run (the original) is kept, not overwritten by the rerun
    assert backup.read_text() == ABLAGE_09


def test_a_crash_between_backup_and_replace_is_finished_by_a_rerun(tmp_path: Path) -> None:
    """The backup exists and holds the original, the file is still the original."""
    path = write(tmp_path, ETSY_100)
    backup = tmp_path / "env.bak"
    backup.write_text(ETSY_100)
    migrate_env(path, rename={"ETSY_SHOP_ID": "ETSY_DEFAULT_SHOP_ID"}, backup_path=backup)
    assert "ETSY_DEFAULT_SHOP_ID='12345678'" in path.read_text()
    restore_env(path, backup)
    assert path.read_text() == ETSY_100


def test_restore_puts_the_old_file_back(tmp_path: Path) -> None:
    path = write(tmp_path, ABLAGE_09, mode=0o600)
    result = migrate_env(path, remove=["LEGACY_MODE"], add={"ENABLE_WEBHOOKS": "true"})
    assert result.backup_path is not None
    restore_env(path, result.backup_path)
    assert path.read_text() == ABLAGE_09
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(EnvFileError, match="cannot be read"):
        restore_env(path, tmp_path / "gone.bak")


def test_a_missing_required_key_changes_nothing(tmp_path: Path) -> None:
    path = write(tmp_path, ETSY_100)
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(EnvFileError, match="SEVDESK_WEBHOOK_SECRET") as err:
        migrate_env(path, rename={"ETSY_SHOP_ID": "ETSY_DEFAULT_SHOP_ID"},
                    require=["SEVDESK_WEBHOOK_SECRET"])
    assert err.value.exit_code == 39
    assert path.read_text() == ETSY_100
    assert sorted(os.listdir(tmp_path)) == before  # no backup, no temporary file
    # a key removed by the step is not there after it
    with pytest.raises(EnvFileError, match="LEGACY_MODE"):
        plan_env_migration(write(tmp_path, ABLAGE_09), remove=["LEGACY_MODE"],
                           require=["LEGACY_MODE"])


def test_renaming_onto_another_value_is_refused(tmp_path: Path) -> None:
    text = "A=1\nB=2\n"
    path = write(tmp_path, text)
    with pytest.raises(EnvFileError, match="B is already set to another value"):
        migrate_env(path, rename={"A": "B"})
    assert path.read_text() == text
    # the same value: the old key goes, the new one keeps its place
    path.write_text("A=1\n# b\nB='1'\n")
    result = migrate_env(path, rename={"A": "B"})
    assert path.read_text() == "# b\nB='1'\n" and result.renamed == [("A", "B")]


def test_add_does_not_overwrite(tmp_path: Path) -> None:
    path = write(tmp_path, "OCR_TIMEOUT_SECONDS=120\n")
    result = migrate_env(path, add={"OCR_TIMEOUT_SECONDS": "300"})
    assert path.read_text() == "OCR_TIMEOUT_SECONDS=120\n"
    assert result.unchanged == ["OCR_TIMEOUT_SECONDS"] and result.backup_path is None
    # renaming to a key and adding it: the added value is the default when the old key
    # was missing
    path.write_text("X=1\n")
    result = migrate_env(path, rename={"MAX_FILE_SIZE": "MAX_UPLOAD_SIZE_MB"},
                         add={"MAX_UPLOAD_SIZE_MB": "50"})
    assert read_env(path) == {"X": "1", "MAX_UPLOAD_SIZE_MB": "50"}
    assert result.absent == ["MAX_FILE_SIZE"]


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"rename": {"1BAD": "X"}}, "not an env key"),
    ({"add": {"A B": "x"}}, "not an env key"),
    ({"rename": {"A": "B"}, "remove": ["A"]}, "more than once"),
    ({"rename": {"A": "B"}, "remove": ["B"]}, "more than once"),
    ({"rename": {"A": "B", "B": "C"}}, "more than once"),
    ({"rename": {"A": "C", "B": "C"}}, "more than once"),
])
def test_bad_steps_are_refused(tmp_path: Path, kwargs: dict[str, object], match: str) -> None:
    path = write(tmp_path, "A=1\nB=2\n")
    with pytest.raises(EnvFileError, match=match):
        migrate_env(path, **kwargs)  # type: ignore[arg-type]
    assert path.read_text() == "A=1\nB=2\n"


def test_bad_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(EnvFileError, match="does not exist"):
        plan_env_migration(tmp_path / "missing.env", rename={"A": "B"})
    path = write(tmp_path, 'A=1\nB="never closed\nC=3\n')
    with pytest.raises(EnvFileError, match="line 2: the \" quote of B is never closed"):
        migrate_env(path, rename={"A": "Z"})
    path.write_bytes(b"A=\xff\n")
    with pytest.raises(EnvFileError, match="not UTF-8"):
        migrate_env(path, rename={"A": "Z"})
    assert path.read_bytes() == b"A=\xff\n"


@pytest.mark.parametrize(("text", "match"), [
    ("OLD_NAME=1\nX=2\nOLD_NAME=3\n", "line 3: OLD_NAME is set twice \\(first on line 1\\)"),
    ("A=1\nexport A=1\n", "line 2: A is set twice"),
    ("A=1\n1BAD=2\n", "line 2: '1BAD' is not an env key"),
    ("A=1\nexport 1BAD=2\n", "line 2: '1BAD' is not an env key"),
    ("A=1\nA B=2\n", "line 2: 'A B' is not an env key"),
    ('M="one\ntwo"\n=x\n', "line 3: '' is not an env key"),
])
def test_malformed_and_duplicate_keys_in_the_file_are_refused(tmp_path: Path, text: str,
                                                              match: str) -> None:
    path = write(tmp_path, text)
    for call in (plan_env_migration, migrate_env):
        with pytest.raises(EnvFileError, match=f"{path}, {match}"):
            call(path, rename={"OLD_NAME": "NEW_NAME"})
    with pytest.raises(EnvFileError, match=match):
        read_env(path)
    assert path.read_text() == text and os.listdir(tmp_path) == [".env"]


def test_lines_without_an_assignment_stay(tmp_path: Path) -> None:
    path = write(tmp_path, "# A=1 in a comment\nBARE\n  # x = y\nA=b=c\n")
    assert read_env(path) == {"A": "b=c"}


@pytest.mark.db
def test_config_migrate_env_refuses_a_key_set_twice(tmp_path: Path, database_url: str,
                                                    capsys: pytest.CaptureFixture[str]
                                                    ) -> None:
    from release_support import release_project, write_plan

    from umbau.cli import main

    folder = release_project(tmp_path, database_url)
    write_plan(folder, '[[releases."2.0.0".steps]]\nkind = "env"\nfile = ".env"\n'
               'rename = { OLD_NAME = "NEW_NAME" }\n', version="2.0.0")
    dup = folder / "dup.env"
    dup.write_text("OLD_NAME=1\nOTHER=2\nOLD_NAME=1\n")
    before = sorted(os.listdir(folder))
    code = main(["--config", str(folder / "umbau.toml"), "--database-url", database_url,
                 "config", "migrate-env", str(dup), "--release", "2.0.0"])
    err = capsys.readouterr().err.strip()
    assert code == 39
    assert err.count("\n") == 0 and f"{dup}, line 3: OLD_NAME is set twice" in err
    assert dup.read_text() == "OLD_NAME=1\nOTHER=2\nOLD_NAME=1\n"
    assert sorted(os.listdir(folder)) == before


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    path = write(tmp_path, ETSY_100)
    result = migrate_env(path, rename={"ETSY_SHOP_ID": "ETSY_DEFAULT_SHOP_ID"}, dry_run=True)
    assert result.dry_run and result.renamed and not result.written
    assert path.read_text() == ETSY_100 and os.listdir(tmp_path) == [".env"]
    planned = plan_env_migration(path, rename={"ETSY_SHOP_ID": "ETSY_DEFAULT_SHOP_ID"})
    assert planned.changes == result.changes


def test_a_byte_order_mark_stays_and_does_not_hide_the_first_key(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_bytes("\ufeffETSY_SHOP_ID=1\nB=2\n".encode())
    migrate_env(path, rename={"ETSY_SHOP_ID": "ETSY_DEFAULT_SHOP_ID"})
    assert path.read_bytes() == "\ufeffETSY_DEFAULT_SHOP_ID=1\nB=2\n".encode()


def test_crlf_files_stay_crlf_and_symlinks_stay_links(tmp_path: Path) -> None:
    real = tmp_path / "shared.env"
    real.write_bytes(b"A=1\r\nB=2\r\n")
    link = tmp_path / ".env"
    link.symlink_to(real)
    migrate_env(link, rename={"A": "C"}, add={"D": "4"})
    assert link.is_symlink()
    assert real.read_bytes() == b"C=1\r\nB=2\r\nD=4\r\n"


# every character but NUL: line separators other than \n, quotes, backslashes, $, #, …
VALUES = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
                 max_size=40)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=VALUES, other=VALUES)
def test_any_value_survives_add_and_rename(tmp_path: Path, value: str, other: str) -> None:
    path = tmp_path / "prop.env"
    path.write_text(f"# head\nKEEP={format_value(other)}\n", encoding="utf-8")
    migrate_env(path, add={"NEW": value}, backup_path=tmp_path / "prop.bak")
    assert read_env(path) == {"KEEP": other, "NEW": value}
    before = path.read_text(encoding="utf-8")
    migrate_env(path, rename={"NEW": "RENAMED", "KEEP": "KEPT"})
    after = path.read_text(encoding="utf-8")
    assert read_env(path) == {"KEPT": other, "RENAMED": value}
    # only the key names changed (a value's line breaks are written escaped, so "\nNEW="
    # can only be the start of a line)
    assert after == before.replace("\nNEW=", "\nRENAMED=", 1).replace("\nKEEP=", "\nKEPT=", 1)
    (tmp_path / "prop.bak").unlink()
    for leftover in tmp_path.glob("prop.env.umbau-*.bak"):
        leftover.unlink()


LINES = st.lists(st.one_of(
    st.sampled_from(["", "# comment", "export A=1", "B = 'x # y'", 'C="a\\"b"  # c', "D",
                     "  E=spaced value # note", "F=\r", 'G="multi', "line\"", "=bad",
                     "1BAD=2"]),
    st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
            max_size=30)), max_size=12)


@settings(max_examples=300, deadline=None)
@given(lines=LINES)
def test_parsing_any_text_gives_it_back_or_names_the_line(lines: list[str]) -> None:
    text = "\n".join(lines)
    try:
        entries = parse_env(text)
    except EnvFileError as exc:
        assert ", line " in str(exc)
        assert any(why in str(exc) for why in ("is never closed", "is not an env key",
                                               "is set twice"))
        return
    assert "".join(e.raw for e in entries) == text
    keys = [e.key for e in entries if e.key is not None]
    assert len(keys) == len(set(keys))


# valid files: distinct keys, each line a comment, a blank, a bare word or an assignment
KEYS = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.\-]{0,8}", fullmatch=True)
ASSIGNMENTS = st.lists(st.tuples(KEYS, VALUES, st.booleans()), max_size=8,
                       unique_by=lambda item: item[0])


def _file(assignments: list[tuple[str, str, bool]]) -> str:
    return "# head\n" + "".join(f"{'export ' if export else ''}{key}={format_value(value)}\n"
                                for key, value, export in assignments)


@settings(max_examples=200, deadline=None)
@given(assignments=ASSIGNMENTS)
def test_a_valid_file_parses_back_to_its_keys_and_values(
        assignments: list[tuple[str, str, bool]]) -> None:
    text = _file(assignments)
    entries = parse_env(text)
    assert "".join(e.raw for e in entries) == text
    assert {e.key: e.value for e in entries if e.key} == {k: v for k, v, _ in assignments}


@settings(max_examples=200, deadline=None)
@given(assignments=ASSIGNMENTS.filter(bool), data=st.data())
def test_a_key_set_twice_is_refused_naming_its_line(
        assignments: list[tuple[str, str, bool]], data: st.DataObject) -> None:
    key, value, export = data.draw(st.sampled_from(assignments))
    at = data.draw(st.integers(0, len(assignments)))
    again = data.draw(st.one_of(st.just(value), VALUES))
    twice = [*assignments[:at], (key, again, not export), *assignments[at:]]
    text = _file(twice)
    with pytest.raises(EnvFileError, match=f"{key} is set twice") as err:
        parse_env(text, source="f.env")
    second = max(i for i, (k, _, _) in enumerate(twice) if k == key)
    line = 2 + sum(format_value(v).count("\n") for _, v, _ in twice[:second]) + second
    assert f"f.env, line {line}:" in str(err.value)
