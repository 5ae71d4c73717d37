"""Test fixtures: a real PostgreSQL (embedded pgserver unless UMBAU_TEST_DATABASE_URL names
one) and a fresh database for every test that asks for ``database_url``."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from umbau.postgres.connect import connect, normalize_url

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No UMBAU_* or DATABASE_URL from the developer's shell leaks into a test."""
    for key in list(os.environ):
        if (key.startswith("UMBAU_") and key != "UMBAU_TEST_DATABASE_URL") or key == "DATABASE_URL":
            monkeypatch.delenv(key, raising=False)


@pytest.fixture(scope="session")
def embedded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The embedded pgserver, or None when UMBAU_TEST_DATABASE_URL names a server."""
    if os.environ.get("UMBAU_TEST_DATABASE_URL"):
        yield None
        return
    from umbau.postgres import embedded

    server = embedded.start(tmp_path_factory.mktemp("pg") / "data")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def server_url(embedded_server: Any) -> str:
    """A URL of the test server's maintenance database."""
    if embedded_server is None:
        named = os.environ["UMBAU_TEST_DATABASE_URL"]
        return str(normalize_url(named).render_as_string(hide_password=False))
    return str(embedded_server.url("postgres"))


def _with_database(url: str, name: str) -> str:
    return normalize_url(url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture
def database_url(server_url: str) -> Iterator[str]:
    """A fresh, empty database for one test, dropped afterwards."""
    name = f"umbau_test_{uuid.uuid4().hex[:12]}"
    with connect(server_url, autocommit=True) as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield _with_database(server_url, name)
    finally:
        with connect(server_url, autocommit=True) as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
