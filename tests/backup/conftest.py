"""Fixtures for the backup tests: a small shop schema with data, more fresh databases."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from umbau.backup import pg
from umbau.postgres.connect import connect
from umbau.settings import Settings

SCHEMA = """
CREATE TABLE customers (id serial PRIMARY KEY, email text NOT NULL UNIQUE, name text,
                        phone text, notes text, country text NOT NULL DEFAULT 'DE');
CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int NOT NULL REFERENCES customers,
                     customer_email text, total_cents int NOT NULL,
                     created_at timestamptz NOT NULL DEFAULT '2025-01-01');
CREATE INDEX orders_customer ON orders (customer_id);
CREATE TABLE integration_state (key text PRIMARY KEY, value jsonb);
CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY);
INSERT INTO customers (email, name, phone, notes)
  SELECT 'kunde' || g || '@web.de', 'Name ' || g, '+49 170 ' || g,
         CASE WHEN g % 3 = 0 THEN NULL ELSE 'note ' || g END
  FROM generate_series(1, 300) g;
INSERT INTO orders (customer_id, customer_email, total_cents)
  SELECT 1 + g % 300, 'kunde' || (1 + g % 300) || '@web.de', g * 7
  FROM generate_series(1, 1200) g;
INSERT INTO integration_state VALUES ('last_sync', '{"at": "2025-01-09"}');
INSERT INTO alembic_version VALUES ('r2');
"""


def fill(url: str) -> None:
    with connect(url) as conn:
        raw = conn.connection.driver_connection
        raw.execute(SCHEMA)  # no parameters: '%' stays the modulo operator
        raw.commit()


def table_checksums(url: str) -> dict[str, tuple[int, str]]:
    """Per table: (rows, md5 over the rows in a stable order)."""
    out = {}
    with connect(url) as conn:
        for info in pg.tables(conn):
            row = conn.execute(text(
                f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) "
                f"FROM {info.qualified} t")).one()
            out[info.key] = (row[0], row[1])
    return out


@pytest.fixture
def make_database(server_url: str) -> Iterator[Callable[[], str]]:
    """A factory of further fresh databases, all dropped afterwards."""
    names: list[str] = []

    def make() -> str:
        name = f"umbau_test_{uuid.uuid4().hex[:12]}"
        with connect(server_url, autocommit=True) as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        names.append(name)
        return pg.with_database(server_url, name)

    yield make
    with connect(server_url, autocommit=True) as conn:
        for name in names:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def shop_url(database_url: str) -> str:
    fill(database_url)
    return database_url


@pytest.fixture
def settings(shop_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=shop_url, root=tmp_path,
                    sections={"backup": {"dir": "backups"}})
