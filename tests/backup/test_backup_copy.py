"""umbau copy: schema + data into an empty database, anonymised on the source."""

from __future__ import annotations

from pathlib import Path

import pytest
from backup_support import fill, table_checksums
from sqlalchemy import text

from umbau.backup.anonymize import Column, Rule, expression
from umbau.backup.copy import copy, foreign_key_order
from umbau.cli import main
from umbau.errors import BackupFailed, TargetNotEmpty, UsageError
from umbau.postgres.connect import connect
from umbau.settings import Settings

RULES = """
salt = "test-salt"

[tables.customers]
email = "email"
name = "name"
phone = "phone"
notes = "null"
country = { fixed = "AT" }

[tables.orders]
customer_email = "email"
total_cents = "shuffle"
"""


def _rules(tmp_path: Path, body: str = RULES) -> Path:
    path = tmp_path / "rules.toml"
    path.write_text(body)
    return path


def _scalar(url: str, sql: str):
    with connect(url) as conn:
        return conn.execute(text(sql)).scalar()


def test_copy_without_rules_is_identical(settings: Settings, make_database) -> None:
    target = make_database()
    result = copy(settings, settings.database_url, target)
    assert [t.table for t in result.tables][:2] == ["public.alembic_version",
                                                     "public.customers"]
    assert table_checksums(target) == table_checksums(settings.database_url)
    # Sequences were set: the next id follows the copied ones.
    assert _scalar(target, "SELECT nextval('orders_id_seq')") == 1201
    # Indexes and foreign keys came with the post-data part.
    assert _scalar(target, "SELECT count(*) FROM pg_constraint WHERE contype = 'f'") == 1
    assert _scalar(target, "SELECT count(*) FROM pg_indexes WHERE indexname = "
                           "'orders_customer'") == 1


def test_anonymised_copy_leaks_no_email_and_joins_still_match(
        settings: Settings, make_database, tmp_path: Path) -> None:
    target = make_database()
    copy(settings, settings.database_url, target, rules_file=_rules(tmp_path))
    with connect(settings.database_url) as conn:
        emails = {r[0] for r in conn.execute(text(
            "SELECT email FROM customers UNION SELECT customer_email FROM orders"))}
        totals = sorted(r[0] for r in conn.execute(text("SELECT total_cents FROM orders")))
    with connect(target) as conn:
        dumped = "\n".join(str(r) for t in ("customers", "orders")
                           for r in conn.execute(text(f"SELECT * FROM {t}")))
        assert not any(e in dumped for e in emails)
        assert "@web.de" not in dumped and "Name 1" not in dumped and "+49 170" not in dumped
        joined = conn.execute(text(
            "SELECT count(*) FROM orders o JOIN customers c ON c.email = o.customer_email "
            "AND c.id = o.customer_id")).scalar()
        assert joined == 1200
        assert conn.execute(text("SELECT count(DISTINCT email) FROM customers")).scalar() == 300
        assert conn.execute(text("SELECT count(*) FROM customers WHERE notes IS NOT NULL "
                                 "OR country <> 'AT'")).scalar() == 0
        assert sorted(r[0] for r in conn.execute(
            text("SELECT total_cents FROM orders"))) == totals
        sample = conn.execute(text("SELECT name, phone FROM customers WHERE id = 1")).one()
    assert " " in sample[0] and sample[1].startswith("+49 30 ")


def test_anonymisation_is_deterministic(settings: Settings, make_database,
                                        tmp_path: Path) -> None:
    first, second = make_database(), make_database()
    for target in (first, second):
        copy(settings, settings.database_url, target, rules_file=_rules(tmp_path),
             tables=("customers",))
    query = "SELECT string_agg(email || name || phone, ',' ORDER BY id) FROM customers"
    assert _scalar(first, query) == _scalar(second, query)


def test_copy_refuses_a_target_with_tables(settings: Settings, make_database) -> None:
    target = make_database()
    with connect(target) as conn:
        conn.execute(text("CREATE TABLE keep_me (id int)"))
        conn.commit()
    with pytest.raises(TargetNotEmpty):
        copy(settings, settings.database_url, target)
    assert main(["copy", "--from", settings.database_url, "--to", target, "-q"]) == 10


def test_failed_copy_leaves_the_target_empty(settings: Settings, make_database,
                                             tmp_path: Path) -> None:
    target = make_database()
    # A fixed value that does not parse as an integer fails the COPY into orders.
    bad = _rules(tmp_path, '[tables.orders]\ntotal_cents = { fixed = "many" }\n')
    with pytest.raises(BackupFailed, match=r"integer.*the target was left as it was"):
        copy(settings, settings.database_url, target, rules_file=bad)
    assert table_checksums(target) == {}


@pytest.mark.parametrize("body, message", [
    ("[tables.customers]\nnope = 'email'\n", "has no column nope"),
    ("[tables.customer]\nemail = 'email'\n", "did you mean public.customers"),
    ("[tables.customers]\nemail = 'null'\n", "NOT NULL"),
    ("[tables.customers]\nemail = 'scramble'\n", "is not a rule"),
    ("[tables.integration_state]\nvalue = 'hash'\n", "hash works on text"),
])
def test_bad_rules_are_refused_before_anything_is_copied(
        settings: Settings, make_database, tmp_path: Path, body: str, message: str) -> None:
    target = make_database()
    with pytest.raises(UsageError, match=message):
        copy(settings, settings.database_url, target, rules_file=_rules(tmp_path, body))
    assert table_checksums(target) == {}


def test_a_table_subset_must_include_what_it_references(settings: Settings,
                                                        make_database) -> None:
    with pytest.raises(UsageError, match=r"add --table public\.customers"):
        copy(settings, settings.database_url, make_database(), tables=("orders",))


def test_foreign_key_order() -> None:
    edges = [("orders", "customers"), ("invoices", "orders"), ("a", "b"), ("b", "a")]
    order = foreign_key_order(["invoices", "orders", "customers", "a", "b"], edges)
    assert order.index("customers") < order.index("orders") < order.index("invoices")
    assert set(order) == {"invoices", "orders", "customers", "a", "b"}


def test_null_stays_null_under_deterministic_rules() -> None:
    sql = expression(Column("email", "text", False), Rule("email"), "'s'")
    assert sql.startswith('CASE WHEN "email" IS NULL THEN NULL')


HARD_SCHEMA = r"""
CREATE TABLE events (id int NOT NULL, at date NOT NULL, PRIMARY KEY (id, at))
  PARTITION BY RANGE (at);
CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
INSERT INTO events SELECT g, '2024-06-01'::date + g FROM generate_series(1, 400) g;
CREATE TABLE notes (id int PRIMARY KEY, event_id int, event_at date,
                    FOREIGN KEY (event_id, event_at) REFERENCES events);
INSERT INTO notes VALUES (1, 1, '2024-06-02');
CREATE TABLE a (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, b_id int,
                doubled int GENERATED ALWAYS AS (id * 2) STORED);
CREATE TABLE b (id int PRIMARY KEY, a_id int REFERENCES a);
ALTER TABLE a ADD FOREIGN KEY (b_id) REFERENCES b;
INSERT INTO a (b_id) SELECT NULL FROM generate_series(1, 5);
INSERT INTO b SELECT id, id FROM a;
UPDATE a SET b_id = id;
CREATE SEQUENCE uncalled;
SELECT setval('uncalled', 50, false);
CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $$ SELECT '
\d+ keep me' $$;
"""


def test_copy_partitions_identity_generated_cycles_and_sequences(
        make_database, tmp_path: Path) -> None:
    source, target = make_database(), make_database()
    fill(source, HARD_SCHEMA)
    copy(Settings(root=tmp_path), source, target)
    assert len(table_checksums(source)) == 4
    assert table_checksums(target) == table_checksums(source)
    assert _scalar(target, "SELECT count(*) FROM events_2024") == 213  # rows in partitions
    assert _scalar(target, "SELECT max(doubled) FROM a") == 10  # computed by the target
    assert _scalar(target, "INSERT INTO a DEFAULT VALUES RETURNING id") == 6  # identity
    assert _scalar(target, "SELECT nextval('uncalled')") == 50  # is_called false kept
    assert _scalar(target, "SELECT f()") == "\n\\d+ keep me"  # the body is untouched
    assert _scalar(target, "SELECT count(*) FROM pg_constraint WHERE contype = 'f' "
                           "AND conparentid = 0") == 3
    # A partitioned table chosen with --table brings its partitions.
    subset = make_database()
    copy(Settings(root=tmp_path), source, subset, tables=("events",))
    assert _scalar(subset, "SELECT count(*) FROM events") == 400


def test_a_failed_copy_is_one_line_not_a_traceback(settings: Settings, make_database,
                                                   tmp_path: Path, capsys) -> None:
    target = make_database()
    bad = _rules(tmp_path, '[tables.orders]\ntotal_cents = { fixed = "many" }\n')
    code = main(["copy", "--from", settings.database_url, "--to", target, "-q",
                 "--anonymize", str(bad)])
    err = capsys.readouterr().err
    assert code == 13, err
    assert "copy failed while copying public.orders" in err and "Traceback" not in err
    assert table_checksums(target) == {}
