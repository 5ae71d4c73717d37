"""Fixtures for backfill tests: settings with quick retries, and a filled table."""

from __future__ import annotations

import psycopg
import pytest

from umbau.postgres.driver import connect_raw
from umbau.settings import Settings


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, lock_timeout=0.5, retries=5, backoff_base=0.02,
                    backoff_max=0.1)


def fill(conn: psycopg.Connection, table: str = "items", rows: int = 5000) -> None:
    """``table``: id, v (text), n (how often the backfill changed the row), hits, payload."""
    conn.execute(f"""CREATE TABLE {table} (id bigint PRIMARY KEY, v text NOT NULL,
                     n int NOT NULL DEFAULT 0, hits int NOT NULL DEFAULT 0, payload jsonb)""")
    conn.execute(f"""INSERT INTO {table} (id, v, payload)
                     SELECT g, md5(g::text),
                            jsonb_build_object('content', 'text ' || g, 'score', 0.5)
                     FROM generate_series(1, %s) g""", (rows,))


def scalar(url: str, query: str, params: tuple | None = None) -> object:
    with connect_raw(url) as conn:
        row = conn.execute(query, params).fetchone()
        return row[0] if row else None


def recorded(url: str) -> int:
    """How many backfills are recorded; 0 also when the state tables do not exist."""
    if scalar(url, "SELECT to_regclass('umbau_backfills')") is None:
        return 0
    return int(scalar(url, "SELECT count(*) FROM umbau_backfills"))  # type: ignore[arg-type]
