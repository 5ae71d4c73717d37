"""Catalog snapshots see every change a downgrade can forget to undo."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from umbau.postgres.connect import connect
from umbau.postgres.snapshot import take

BASE = """
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN positive AS integer;
CREATE TABLE t (id bigint PRIMARY KEY, v text DEFAULT 'x', n integer, m mood, w text,
                CONSTRAINT n_small CHECK (n < 10));
CREATE INDEX t_n_partial ON t (n) WHERE n > 0;
CREATE INDEX t_lower_v ON t (lower(v));
CREATE SEQUENCE t_seq OWNED BY t.n;
CREATE VIEW t_view AS SELECT id, v FROM t;
CREATE MATERIALIZED VIEW t_mat AS SELECT id FROM t;
CREATE UNIQUE INDEX t_mat_id ON t_mat (id);
"""

CHANGES = {
    "check constraint definition": (
        "ALTER TABLE t DROP CONSTRAINT n_small, ADD CONSTRAINT n_small CHECK (n < 11)",
        "constraint t.n_small: definition"),
    "partial index predicate": (
        "DROP INDEX t_n_partial; CREATE INDEX t_n_partial ON t (n) WHERE n > 1",
        "index t.t_n_partial: definition"),
    "expression index": (
        "DROP INDEX t_lower_v; CREATE INDEX t_lower_v ON t (upper(v))",
        "index t.t_lower_v: definition"),
    "column default": ("ALTER TABLE t ALTER COLUMN v SET DEFAULT 'y'", "column t.v: default"),
    "enum label order": (
        "ALTER TABLE t DROP COLUMN m; DROP TYPE mood;"
        "CREATE TYPE mood AS ENUM ('ok', 'sad', 'happy'); ALTER TABLE t ADD COLUMN m mood",
        "enum mood: labels"),
    "view definition": ("CREATE OR REPLACE VIEW t_view AS SELECT id, upper(v) AS v FROM t",
                        "view t_view: definition"),
    "sequence ownership": ("ALTER SEQUENCE t_seq OWNED BY NONE", "sequence t_seq: owned_by"),
    "domain check": ("ALTER DOMAIN positive ADD CONSTRAINT positive_check CHECK (VALUE > 0)",
                     "domain constraint positive.positive_check: unexpected"),
    "materialized view index": ("DROP INDEX t_mat_id", "index t_mat.t_mat_id: missing"),
    "column collation": ('ALTER TABLE t ALTER COLUMN w TYPE text COLLATE "C"',
                         "column t.w: collation"),
    "row level security": ("ALTER TABLE t ENABLE ROW LEVEL SECURITY",
                           "table t: row_security"),
    "policy": ("CREATE POLICY own ON t USING (n > 0)", "policy t.own: unexpected"),
    "unlogged": ("ALTER TABLE t SET UNLOGGED", "table t: unlogged"),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_change_shows_in_the_diff(database_url: str, change: str) -> None:
    sql, expected = CHANGES[change]
    with connect(database_url) as conn:
        conn.execute(text(BASE))
        conn.commit()
        before = take(conn)
        assert before.diff(take(conn)) == []
        conn.execute(text(sql))
        conn.commit()
        diff = before.diff(take(conn))
    assert any(line.startswith(expected) for line in diff), diff


TRACKED = {
    **{name: change for name, (change, _) in CHANGES.items()},
    "table rename": "ALTER TABLE t RENAME TO t_renamed",
    "index rename": "ALTER INDEX t_lower_v RENAME TO t_lower_v2",
    "column rename": "ALTER TABLE t RENAME COLUMN w TO w2",
    "column rename under views": "CREATE VIEW t_view_2 AS SELECT v FROM t_view; "
                                 "COMMIT; ALTER TABLE t RENAME COLUMN v TO v2",
    "view rename": "ALTER VIEW t_view RENAME TO t_view2",
    "drop table": "DROP TABLE t CASCADE",
    "drop index": "DROP INDEX t_n_partial",
    "new table with serial": "CREATE TABLE u (id serial PRIMARY KEY, t_id bigint "
                             "REFERENCES t (id))",
    "identity column": "ALTER TABLE t ADD COLUMN k bigint GENERATED ALWAYS AS IDENTITY",
    "trigger": "CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS "
               "$$ BEGIN RETURN NEW; END $$; CREATE TRIGGER tg BEFORE INSERT ON t "
               "FOR EACH ROW EXECUTE FUNCTION f()",
    "enum value": "ALTER TYPE mood ADD VALUE 'meh'",
    "free sequence": "CREATE SEQUENCE numbers START 5",
    "schema and table": "CREATE SCHEMA billing; CREATE TABLE billing.t (id int)",
    "comment only": "COMMENT ON TABLE t IS 'nothing the snapshot shows'",
}


@pytest.mark.parametrize("change", sorted(TRACKED))
def test_the_tracked_snapshot_equals_a_full_one(database_url: str, change: str) -> None:
    """Reading only what the event triggers name gives the same snapshot as reading all."""
    from umbau.postgres import tracking

    excluded = set(tracking.EXCLUDED)
    with connect(database_url) as conn:
        assert tracking.install(conn)
        conn.execute(text(BASE))
        conn.commit()
        tracker = tracking.Tracker(excluded)
        before, _ = tracker.observe(conn, take(conn, excluded))
        conn.commit()
        conn.execute(text(TRACKED[change]))
        observed, groups = tracker.observe(conn, before)
        full = take(conn, excluded)
    assert observed.objects == full.objects
    assert observed.tables == full.tables
    assert before.diff(observed, groups) == before.diff(full)
