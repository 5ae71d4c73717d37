"""The backup tests' shop schema and table checksums (a module of its own: test modules
import it by name, which a conftest.py cannot be reliably)."""

from __future__ import annotations

from sqlalchemy import text

from umbau.postgres import dumpcatalog as catalog
from umbau.postgres.connect import connect

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


def fill(url: str, schema: str = SCHEMA) -> None:
    with connect(url) as conn:
        raw = conn.connection.driver_connection
        raw.execute(schema)  # no parameters: '%' stays the modulo operator
        raw.commit()


def table_checksums(url: str) -> dict[str, tuple[int, str]]:
    """Per table: (rows, md5 over the rows in a stable order)."""
    out = {}
    with connect(url) as conn:
        for info in catalog.tables(conn):
            row = conn.execute(text(
                f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) "
                f"FROM {info.qualified} t")).one()
            out[info.key] = (row[0], row[1])
    return out
