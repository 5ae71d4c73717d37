"""prefer-bigint-primary-key on foreign keys: the exact findings, worst case named."""

from __future__ import annotations

from pathlib import Path

from umbau.lint import config
from umbau.lint.context import LintContext
from umbau.lint.engine import lint_units
from umbau.lint.sources import sql_file_unit

RULE = "prefer-bigint-primary-key"


def _messages(tmp_path: Path, sql: str) -> list[tuple[str | None, str, str]]:
    path = tmp_path / "keys.sql"
    path.write_text(sql)
    cfg = config.load({"enable": [RULE]})
    found = lint_units([sql_file_unit(path)], cfg, LintContext(cfg.target_version))
    return [(f.table, f.message, f.safe) for f in found if f.rule == RULE]


def test_integer_foreign_key_to_a_bigint_key_is_named_as_the_worst_case(tmp_path: Path) -> None:
    found = _messages(tmp_path, """
        CREATE TABLE accounts (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY);
        CREATE TABLE events (id bigint PRIMARY KEY, account_id integer REFERENCES accounts);
    """)
    assert found == [(
        "events",
        "events.account_id is integer but references accounts.id, a bigint key: once "
        "accounts hands out ids above 2,147,483,647, every insert into events that points "
        "at them fails (integer out of range); make events.account_id bigint like the key "
        "it references",
        'sa.Column("account_id", sa.BigInteger(), sa.ForeignKey("accounts.id"))  # on events',
    )]


def test_smallint_foreign_key_to_an_integer_key_and_the_key_itself(tmp_path: Path) -> None:
    found = _messages(tmp_path, """
        CREATE TABLE shops (id integer PRIMARY KEY);
        CREATE TABLE orders (id bigint PRIMARY KEY, shop_id smallint,
                             FOREIGN KEY (shop_id) REFERENCES shops (id));
    """)
    assert [message for _, message, _ in found] == [
        "shops.id is a 32-bit primary key and runs out at 2,147,483,647: use bigint "
        "(BigInteger / bigserial / identity)",
        "orders.shop_id is smallint but references shops.id, an integer key: once shops "
        "hands out ids above 32,767, every insert into orders that points at them fails "
        "(integer out of range); make orders.shop_id integer like the key it references",
    ]
    assert found[1][2].endswith("# on orders; and make shops.id bigint too")


def test_added_constraint_on_an_existing_integer_column(tmp_path: Path) -> None:
    found = _messages(tmp_path, """
        CREATE TABLE accounts (id integer PRIMARY KEY);
        ALTER TABLE events ADD COLUMN account_id integer;
        ALTER TABLE events ADD CONSTRAINT fk FOREIGN KEY (account_id) REFERENCES accounts NOT VALID;
    """)
    assert [message for _, message, _ in found] == [
        "accounts.id is a 32-bit primary key and runs out at 2,147,483,647: use bigint "
        "(BigInteger / bigserial / identity)",
        "events.account_id is a 32-bit foreign key (to accounts.id) and runs out at "
        "2,147,483,647 with the key it references: use bigint for both",
    ]


def test_bigint_foreign_keys_and_unknown_columns_pass(tmp_path: Path) -> None:
    assert _messages(tmp_path, """
        CREATE TABLE accounts (id bigint PRIMARY KEY);
        CREATE TABLE events (id bigint PRIMARY KEY, account_id bigint REFERENCES accounts,
                             parent_id bigint, FOREIGN KEY (parent_id) REFERENCES events);
        ALTER TABLE events ADD CONSTRAINT fk FOREIGN KEY (owner_id) REFERENCES owners (id);
    """) == []
