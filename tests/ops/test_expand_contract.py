"""Expand/contract of a rename with both application versions writing at once."""

from __future__ import annotations

import random
import threading
from typing import Any

import pytest
from ops_support import OpsProject
from sessions import session

from umbau import ops
from umbau.backfill import run_backfill
from umbau.cli import main
from umbau.commands import migrate
from umbau.errors import EXIT_OPS_REFUSED, OpsRefused

pytestmark = pytest.mark.db

EXPAND = 'ops.rename_column("docs", "ocr_text", "extracted_text", type_=sa.Text(){extra})'
EXPAND_DOWN = 'ops.revert_rename_column("docs", "ocr_text", "extracted_text")'
CONTRACT = 'ops.contract_rename_column("docs", "ocr_text", "extracted_text")'
CONTRACT_DOWN = ('ops.revert_contract_rename_column("docs", "ocr_text", "extracted_text", '
                 'type_=sa.Text())')
DIFFERING = "SELECT count(*) FROM docs WHERE ocr_text IS DISTINCT FROM extracted_text"


def expand_contract(project: OpsProject, extra: str = "") -> None:
    project.add("r1", EXPAND.format(extra=extra), EXPAND_DOWN)
    project.add("r2", CONTRACT, CONTRACT_DOWN, phase="post")


class AppWriter(threading.Thread):
    """One application version: inserts rows and updates random ones through ``column``."""

    def __init__(self, url: str, column: str, first_id: int, seed: int) -> None:
        super().__init__(daemon=True)
        self.url, self.column, self.next_id = url, column, first_id
        self.rng = random.Random(seed)
        self.stop = threading.Event()
        self.writes = 0
        self.errors: list[BaseException] = []
        self.last: dict[int, str] = {}  # id -> the text this writer wrote last
        self.start()

    def run(self) -> None:
        try:
            with session(self.url) as conn:
                while not self.stop.is_set():
                    self.write(conn)
        except BaseException as exc:  # reported by the test
            self.errors.append(exc)

    def write(self, conn: Any) -> None:
        text = f"{self.column} {self.writes}"
        if self.rng.random() < 0.3:
            row_id, self.next_id = self.next_id, self.next_id + 1
            conn.execute(f"INSERT INTO docs (id, owner_id, {self.column}) VALUES (%s, 1, %s)",
                         (row_id, text))
        else:
            row_id = self.rng.randint(1, 1000)
            conn.execute(f"UPDATE docs SET {self.column} = %s WHERE id = %s", (text, row_id))
        self.last[row_id] = text
        self.writes += 1

    def finish(self) -> None:
        self.stop.set()
        self.join(10)
        assert not self.errors, self.errors


@pytest.mark.slow
def test_both_versions_write_at_once_and_the_columns_stay_equal(project: OpsProject) -> None:
    expand_contract(project)
    old_app = AppWriter(project.url, "ocr_text", 100_000, seed=1)
    project.upgrade("r1")  # the expand and its backfill run while 1.0 keeps writing
    new_app = AppWriter(project.url, "extracted_text", 200_000, seed=2)
    threading.Event().wait(1.5)  # the rolling deploy: both versions write
    old_app.finish()
    new_app.finish()
    assert old_app.writes > 50 and new_app.writes > 50
    assert project.scalar(DIFFERING) == 0
    inserted = project.rows("SELECT id, ocr_text, extracted_text FROM docs WHERE id >= 100000")
    assert len(inserted) == (old_app.next_id - 100_000) + (new_app.next_id - 200_000)
    assert all(r[1] is not None and r[1] == r[2] for r in inserted)
    project.upgrade()  # the old version is gone: contract
    columns = {r[0] for r in project.rows("SELECT attname FROM pg_attribute WHERE attrelid = "
                                          "'docs'::regclass AND attnum > 0 AND NOT attisdropped")}
    assert "ocr_text" not in columns and "extracted_text" in columns
    assert project.scalar("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'docs'::regclass "
                          "AND NOT tgisinternal") == 0


def test_the_trigger_in_both_directions(project: OpsProject) -> None:
    expand_contract(project)
    project.upgrade("r1")
    project.execute(
        "INSERT INTO docs (id, owner_id, ocr_text) VALUES (5000, 1, 'from 1.0')",
        "INSERT INTO docs (id, owner_id, extracted_text) VALUES (5001, 1, 'from 1.1')",
        "UPDATE docs SET ocr_text = 'changed by 1.0' WHERE id = 1",
        "UPDATE docs SET extracted_text = 'changed by 1.1' WHERE id = 2",
        "UPDATE docs SET ocr_text = NULL WHERE id = 3")
    assert project.rows("SELECT id, ocr_text, extracted_text FROM docs WHERE id IN "
                        "(1, 2, 3, 5000, 5001) ORDER BY id") == [
        (1, "changed by 1.0", "changed by 1.0"), (2, "changed by 1.1", "changed by 1.1"),
        (3, None, None), (5000, "from 1.0", "from 1.0"), (5001, "from 1.1", "from 1.1")]


def test_contract_is_refused_until_the_deferred_backfill_ran(
        project: OpsProject, capsys: pytest.CaptureFixture[str]) -> None:
    expand_contract(project, extra=', backfill="defer"')
    project.upgrade("r1")
    assert project.scalar(DIFFERING) == 1000  # no row copied yet
    code = main(["--config", str(project.path / "umbau.toml"), "--database-url", project.url,
                 "upgrade", "--phase", "post"])
    err = capsys.readouterr().err
    assert code == EXIT_OPS_REFUSED
    assert "backfill umbau_docs_ocr_text_to_extracted_text never ran" in err
    assert project.scalar("SELECT version_num FROM alembic_version") == "r1"
    result = run_backfill(project.settings(), ops.rename_backfill("docs", "ocr_text",
                                                                  "extracted_text"))
    assert result.status == "done" and result.rows == 1000
    project.upgrade("r2")
    assert project.scalar("SELECT version_num FROM alembic_version") == "r2"


def test_contract_is_refused_while_rows_differ(project: OpsProject) -> None:
    expand_contract(project)
    project.upgrade("r1")
    project.execute("ALTER TABLE docs DISABLE TRIGGER umbau_sync_docs_ocr_text_extracted_text",
                    "UPDATE docs SET ocr_text = 'changed' WHERE id = 9",
                    "ALTER TABLE docs ENABLE TRIGGER umbau_sync_docs_ocr_text_extracted_text")
    with pytest.raises(OpsRefused, match=r"1 row\(s\) of docs have a extracted_text that is "
                                         r"not ocr_text"):
        project.upgrade()
    assert project.scalar("SELECT count(*) FROM docs WHERE ocr_text = 'changed'") == 1


def test_downgrade_through_contract_and_expand_keeps_every_text(project: OpsProject) -> None:
    expand_contract(project)
    project.upgrade()
    project.execute("UPDATE docs SET extracted_text = 'written by 2.0' WHERE id = 4")
    migrate.downgrade(project.settings(), "r1", yes=True)
    assert project.scalar(DIFFERING) == 0
    migrate.downgrade(project.settings(), "r0", yes=True)
    assert project.scalar("SELECT ocr_text FROM docs WHERE id = 4") == "written by 2.0"
    project.upgrade()  # and up again: the backfills start afresh
    assert project.scalar("SELECT extracted_text FROM docs WHERE id = 4") == "written by 2.0"


def test_rename_table_keeps_the_old_name_as_an_updatable_view(project: OpsProject) -> None:
    project.add("r1", 'ops.rename_table("owners", "accounts")',
                'ops.revert_rename_table("owners", "accounts")')
    project.add("r2", 'ops.contract_rename_table("owners", "accounts")',
                'ops.revert_contract_rename_table("owners", "accounts")', phase="post")
    project.upgrade("r1")
    project.execute("INSERT INTO owners (id) VALUES (500)",  # the old version
                    "INSERT INTO accounts (id) VALUES (501)")  # the new one
    assert project.scalar("SELECT count(*) FROM accounts WHERE id >= 500") == 2
    assert project.scalar("SELECT count(*) FROM owners WHERE id >= 500") == 2
    project.upgrade()
    assert project.scalar("SELECT to_regclass('owners')") is None
    migrate.downgrade(project.settings(), "r0", yes=True)
    assert project.scalar("SELECT relkind FROM pg_class WHERE relname = 'owners'") == "r"
    assert project.scalar("SELECT to_regclass('accounts')") is None


ATTRIBUTES = '''
op.execute("UPDATE docs SET ocr_text = 'empty' WHERE ocr_text IS NULL")
op.execute("ALTER TABLE docs ALTER COLUMN ocr_text SET DEFAULT 'none yet'")
op.execute("ALTER TABLE docs ALTER COLUMN ocr_text SET NOT NULL")
op.execute("COMMENT ON COLUMN docs.ocr_text IS 'what OCR read'")
op.execute("CREATE INDEX docs_ocr_text_idx ON docs (owner_id, ocr_text)")
'''


def column_state(project: OpsProject, column: str) -> tuple[Any, ...]:
    """(default, NOT NULL, comment, names of the indexes on the column)."""
    found = project.rows(
        "SELECT pg_get_expr(d.adbin, d.adrelid), a.attnotnull, "
        "col_description(a.attrelid, a.attnum), "
        "(SELECT array_agg(c.relname::text ORDER BY c.relname) FROM pg_index i "
        " JOIN pg_class c ON c.oid = i.indexrelid "
        " WHERE i.indrelid = a.attrelid AND a.attnum = ANY (i.indkey)) "
        "FROM pg_attribute a LEFT JOIN pg_attrdef d "
        "ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
        "WHERE a.attrelid = 'docs'::regclass AND a.attname = :c AND NOT a.attisdropped",
        c=column)
    return found[0] if found else ()


def test_the_renamed_column_keeps_default_not_null_comment_and_indexes(
        project: OpsProject) -> None:
    project.add("r0b", ATTRIBUTES)
    expand_contract(project)
    project.upgrade("r0b")
    original = column_state(project, "ocr_text")
    assert original == ("'none yet'::text", True, "what OCR read", ["docs_ocr_text_idx"])
    project.upgrade("r1")
    # expanded: the new column has a copy of the index, no default, and may hold NULL
    assert column_state(project, "extracted_text") == (
        None, False, None, ["docs_ocr_text_idx_umbau_new"])
    project.execute("INSERT INTO docs (id, owner_id) VALUES (7000, 1)")  # 1.0's INSERT
    assert project.rows("SELECT ocr_text, extracted_text FROM docs WHERE id = 7000") == [
        ("none yet", "none yet")]
    project.upgrade()
    assert column_state(project, "ocr_text") == ()
    assert column_state(project, "extracted_text") == original
    assert project.scalar("SELECT count(*) FROM pg_constraint WHERE conrelid = "
                          "'docs'::regclass AND contype = 'c'") == 0  # the check went
    migrate.downgrade(project.settings(), "r1", yes=True)  # back to the expanded state
    assert column_state(project, "ocr_text") == original
    assert column_state(project, "extracted_text") == (
        None, False, None, ["docs_ocr_text_idx_umbau_new"])
    assert project.scalar(DIFFERING) == 0
    migrate.downgrade(project.settings(), "r0b", yes=True)
    assert column_state(project, "ocr_text") == original
    assert column_state(project, "extracted_text") == ()
