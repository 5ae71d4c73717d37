"""umbau copy: schema + data into an empty database, anonymised on the source."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import table_checksums
from sqlalchemy import text

from umbau.backup.anonymize import Column, Rule, expression
from umbau.backup.copy import copy, foreign_key_order
from umbau.cli import main
from umbau.errors import TargetNotEmpty, UsageError
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
    with pytest.raises(Exception, match="integer"):
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
