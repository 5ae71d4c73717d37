"""The Etsy -> sevDesk example: its history up, down and up, its data steps, its models."""

from __future__ import annotations

import pytest
from example_support import Example

pytestmark = pytest.mark.db



def test_up_to_head_down_to_base_and_up_again(etsy: Example) -> None:
    # no allow_unsafe: every 1.1.0 step is written the safe way, so the lint gate lets it by
    up = etsy.upgrade("head", allow_unsafe=False)
    assert [step.revision for step in up.steps][-1] == etsy.releases["1.1.0"]
    assert len(up.steps) == 7
    assert etsy.app_tables() == {"customers", "orders", "invoices", "integration_state",
                                 "shops"}

    down = etsy.downgrade("base")
    assert len(down.steps) == 7
    assert etsy.current() == set()
    assert etsy.app_tables() == set()

    again = etsy.upgrade("head")
    assert len(again.steps) == 7
    assert etsy.current() == {etsy.releases["1.1.0"]}


def test_the_1_1_0_steps_leave_a_valid_index_and_a_validated_foreign_key(etsy: Example) -> None:
    etsy.upgrade("head")
    assert etsy.rows(
        "SELECT i.indisvalid, pg_get_indexdef(i.indexrelid) FROM pg_index AS i "
        "WHERE i.indexrelid = 'idx_orders_shop_created'::regclass"
    ) == [(True, "CREATE INDEX idx_orders_shop_created ON public.orders USING btree "
                 "(shop_id, created_at)")]
    assert etsy.scalar("SELECT convalidated FROM pg_constraint "
                       "WHERE conname = 'fk_orders_shop_id_shops'") is True
    etsy.downgrade("-1")  # back to NOT VALID, as before the VALIDATE step
    assert etsy.scalar("SELECT convalidated FROM pg_constraint "
                       "WHERE conname = 'fk_orders_shop_id_shops'") is False


def test_data_of_1_0_0_moves_to_the_default_shop_and_back(etsy: Example) -> None:
    etsy.upgrade("1.0.0")
    counts = etsy.generate(300, seed=3)
    assert counts["orders"] == 300 and counts["customers"] == 100
    assert 0 < counts["invoices"] <= 300
    before = etsy.fingerprint()
    configured = etsy.scalar("SELECT value ->> 'shop_id' FROM integration_state "
                             "WHERE key = 'etsy.shop'")

    etsy.upgrade("head")
    shops = etsy.rows("SELECT id, etsy_shop_id FROM shops")
    assert len(shops) == 1 and shops[0][1] == configured  # 1.0.0's ETSY_SHOP_ID shop
    default = etsy.scalar("SELECT (value ->> 'shop_id')::int FROM integration_state "
                          "WHERE key = 'default_shop'")
    assert default == shops[0][0]
    assert etsy.rows("SELECT shop_id, count(*) FROM orders GROUP BY shop_id") == [
        (default, 300)]

    etsy.downgrade("1.0.0")
    assert etsy.fingerprint() == before  # nothing lost, nothing left behind


def test_a_fresh_install_gets_a_placeholder_default_shop(etsy: Example) -> None:
    etsy.upgrade("head")
    assert etsy.rows("SELECT etsy_shop_id, name FROM shops") == [("default", "Default shop")]


def test_models_match_the_database_at_head_only(etsy: Example) -> None:
    etsy.upgrade("1.0.0")
    assert etsy.drift()  # the comparison does see the missing 1.1.0 schema
    etsy.upgrade("head")
    assert etsy.drift() == []


def test_datagen_at_head_spreads_orders_over_the_shops(etsy: Example) -> None:
    etsy.upgrade("head")
    counts = etsy.generate(200, seed=1)
    assert counts["shops"] == 2 and counts["orders"] == 200
    per_shop = dict(etsy.rows("SELECT shop_id, count(*) FROM orders GROUP BY shop_id"))
    assert None not in per_shop and len(per_shop) == 3
    default = etsy.scalar("SELECT (value ->> 'shop_id')::int FROM integration_state "
                          "WHERE key = 'default_shop'")
    assert per_shop[default] == max(per_shop.values())
    # the sequences moved past the generated ids: the app's next insert works
    etsy.execute("INSERT INTO customers (etsy_buyer_id, name) VALUES (1, 'Neu')")
    assert etsy.scalar("SELECT max(id) FROM customers") == counts["customers"] + 1
    # a second run adds to the first
    assert etsy.generate(50, seed=2)["orders"] == 50
    assert etsy.scalar("SELECT count(*) FROM orders") == 250


def test_datagen_is_deterministic_for_a_seed(etsy: Example) -> None:
    etsy.upgrade("1.0.0")
    tables = "customers, orders, invoices, integration_state"
    etsy.generate(120, seed=7)
    first = etsy.fingerprint()
    etsy.execute(f"TRUNCATE {tables} RESTART IDENTITY")
    etsy.generate(120, seed=7)
    assert etsy.fingerprint() == first
    etsy.execute(f"TRUNCATE {tables} RESTART IDENTITY")
    etsy.generate(120, seed=8)
    assert etsy.fingerprint()["orders"] != first["orders"]


def test_datagen_needs_the_schema(etsy: Example) -> None:
    with pytest.raises(RuntimeError, match="umbau upgrade"):
        etsy.generate(10)
