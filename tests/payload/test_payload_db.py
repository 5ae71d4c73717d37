"""Payload backfills and VersionedJSON on a real PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, insert, select, text

from umbau import payload
from umbau.backfill import Backfill, run_backfill
from umbau.errors import PayloadError, UsageError
from umbau.payload import Registry
from umbau.payload.testing import check_chain, check_sql_matches
from umbau.payload.types import VersionedJSON
from umbau.postgres.connect import connect
from umbau.settings import Settings

pytestmark = pytest.mark.db


def registry(with_sql: bool = True) -> Registry:
    reg = Registry()
    payload.define("note", first="0", on=reg)

    @payload.upgrader("note", from_="0", to="1", on=reg, sql=(
        "jsonb_build_object('version', '1', 'text', coalesce({doc} -> 'content', '\"\"'))"
        if with_sql else None))
    def up1(doc: dict[str, Any]) -> dict[str, Any]:
        return {"text": doc.get("content", "")}

    @payload.upgrader("note", from_="1", to="2", on=reg, sql=(
        "{doc} || jsonb_build_object('version', '2', 'length', "
        "length(coalesce({doc} ->> 'text', '')))" if with_sql else None))
    def up2(doc: dict[str, Any]) -> dict[str, Any]:
        text_ = doc.get("text")
        return {**doc, "length": len(text_ if isinstance(text_, str) else "")}

    return reg


SAMPLES = {"0": [{"content": "hello"}, {}], "1": [{"version": "1", "text": "ab"}]}


def fill(url: str, rows: int = 3000) -> None:
    with connect(url) as conn:
        conn.execute(text("CREATE TABLE notes (id bigint PRIMARY KEY, body jsonb)"))
        conn.execute(text("""
            INSERT INTO notes
            SELECT g, CASE g % 4
                WHEN 0 THEN jsonb_build_object('content', 'note ' || g)
                WHEN 1 THEN jsonb_build_object('version', '1', 'text', 'n' || g)
                WHEN 2 THEN jsonb_build_object('version', '2', 'text', 'x', 'length', 1)
                ELSE NULL END
            FROM generate_series(1, :rows) g"""), {"rows": rows})
        conn.commit()


def bodies(url: str) -> dict[int, Any]:
    with connect(url) as conn:
        return dict(conn.execute(text("SELECT id, body FROM notes ORDER BY id")).all())


def expected(url: str, reg: Registry) -> dict[int, Any]:
    return {k: None if v is None else reg.upgrade("note", v) for k, v in bodies(url).items()}


@pytest.mark.parametrize("with_sql", [True, False], ids=["sql", "python"])
def test_the_backfill_upgrades_every_row_to_the_latest_version(database_url: str,
                                                               with_sql: bool) -> None:
    fill(database_url)
    reg = registry(with_sql)
    want = expected(database_url, reg)
    fill_ = Backfill.from_payload("notes", "body", "note", registry=reg, batch_size=500)
    assert fill_.kind == ("sql" if with_sql else "python")
    result = run_backfill(Settings(database_url=database_url), fill_)
    assert result.verification is not None and result.verification.ok
    assert bodies(database_url) == want
    # rows already at the latest version and NULLs were not candidates
    assert result.rows == 1500


def test_only_rows_below_the_latest_version_are_candidates(database_url: str) -> None:
    fill(database_url, rows=8)
    fill_ = Backfill.from_payload("notes", "body", "note", registry=registry())
    with connect(database_url) as conn:
        ids = conn.execute(text(f"SELECT id FROM notes WHERE {fill_.where} ORDER BY id")).all()
    assert [i for (i,) in ids] == [1, 4, 5, 8]


def test_the_backfill_fingerprint_is_stable_across_processes() -> None:
    first = Backfill.from_payload("notes", "body", "note", registry=registry(False))
    second = Backfill.from_payload("notes", "body", "note", registry=registry(False))
    assert first.fingerprint() == second.fingerprint()
    assert "upgrade[note:body->2]" in json.dumps(first.definition())


def test_use_sql_insists_on_sql_forms() -> None:
    with pytest.raises(UsageError, match="no SQL form for 0->1, 1->2"):
        Backfill.from_payload("notes", "body", "note", registry=registry(False), use_sql=True)


def test_a_json_column_is_upgraded_too(database_url: str) -> None:
    with connect(database_url) as conn:
        conn.execute(text("CREATE TABLE notes (id int PRIMARY KEY, body json)"))
        conn.execute(text("""INSERT INTO notes VALUES (1, '{"content": "a b"}'),
                             (2, '{"version": "2", "text": "", "length": 0}')"""))
        conn.commit()
    reg = registry()
    fill_ = Backfill.from_payload("notes", "body", "note", registry=reg, column_type="json")
    run_backfill(Settings(database_url=database_url), fill_)
    assert bodies(database_url)[1] == {"version": "2", "text": "a b", "length": 3}


def test_sql_and_python_agree_on_the_samples(database_url: str) -> None:
    reg = registry()
    assert check_chain("note", SAMPLES, registry=reg).upgraded == 3
    with connect(database_url) as conn:
        assert check_sql_matches("note", SAMPLES, conn, registry=reg) == 3


def test_check_sql_matches_names_a_disagreeing_sample(database_url: str) -> None:
    reg = Registry()
    reg.add("k", "0", "1", lambda d: {"n": 1}, sql="jsonb_build_object('version', '1', 'n', 2)")
    with connect(database_url) as conn, pytest.raises(AssertionError, match="sample 0 of "
                                                      "version 0: SQL gives"):
        check_sql_matches("k", {"0": [{}]}, conn, registry=reg)


def test_versioned_json_upgrades_on_read_and_stamps_on_write(database_url: str) -> None:
    reg = registry()
    meta = MetaData()
    notes = Table("notes", meta, Column("id", Integer, primary_key=True),
                  Column("body", VersionedJSON("note", registry=reg)))
    with connect(database_url) as conn:
        meta.create_all(conn)
        assert conn.execute(text("SELECT data_type FROM information_schema.columns "
                                 "WHERE table_name = 'notes' AND column_name = 'body'"
                                 )).scalar() == "jsonb"
        conn.execute(text("""INSERT INTO notes VALUES (1, '{"content": "old one"}')"""))
        conn.execute(insert(notes).values(id=2, body={"text": "new", "length": 3}))
        conn.execute(insert(notes).values(id=3, body=None))
        read = dict(conn.execute(select(notes.c.id, notes.c.body)).all())
        raw = dict(conn.execute(text("SELECT id, body FROM notes")).all())
    assert read[1] == {"version": "2", "text": "old one", "length": 7}
    assert raw[1] == {"content": "old one"}  # reading changes nothing stored
    assert raw[2] == {"version": "2", "text": "new", "length": 3}
    assert read[2] == raw[2]
    assert read[3] is None


def test_versioned_json_names_an_unreadable_document(database_url: str) -> None:
    meta = MetaData()
    notes = Table("notes", meta, Column("id", Integer, primary_key=True),
                  Column("body", VersionedJSON("note", registry=registry())))
    with connect(database_url) as conn:
        meta.create_all(conn)
        conn.execute(text("""INSERT INTO notes VALUES (1, '{"version": "9"}')"""))
        with pytest.raises(PayloadError, match="payload kind 'note' has no version '9'"):
            conn.execute(select(notes.c.body)).all()
