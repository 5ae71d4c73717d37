"""Drift from umbau's own catalog snapshots: every kind of difference is named, and
what Alembic's comparison gets wrong (expression indexes) is no difference."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from helpers import add_revision, make_project, settings_for

from umbau.commands import doctor as doctor_cmd
from umbau.commands import migrate
from umbau.testing.stairway import run_checks

SCHEMA = '''
op.execute("CREATE TYPE state AS ENUM ('new', 'paid')")
op.execute("CREATE TABLE orders (id bigint PRIMARY KEY, email text NOT NULL, "
           "state state NOT NULL DEFAULT 'new', total numeric(10, 2), "
           "CONSTRAINT orders_total_positive CHECK (total > 0))")
op.execute("CREATE INDEX ix_orders_email_lower ON orders (lower(email))")
op.execute("CREATE INDEX ix_orders_open ON orders (id) WHERE state = 'new'")
op.execute("CREATE SEQUENCE invoice_numbers START 1000")
'''

MODELS = '''
import sqlalchemy as sa
metadata = sa.MetaData()
state = sa.Enum({labels}, name="state")
orders = sa.Table(
    "orders", metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("email", sa.Text, nullable={email_nullable}),
    sa.Column("state", state, nullable=False, server_default={default!r}),
    sa.Column("total", sa.Numeric(10, 2)),
    sa.CheckConstraint("total > 0", name={check!r}),
)
sa.Index("ix_orders_email_lower", sa.func.lower(orders.c.email))
sa.Index("ix_orders_open", orders.c.id, postgresql_where=sa.text("state = 'new'"))
sa.Sequence("invoice_numbers", start={start}, metadata=metadata)
'''

MATCHING = {"labels": "'new', 'paid'", "email_nullable": False, "default": "new",
            "check": "orders_total_positive", "start": 1000}


def project_with_models(folder: Path, **changes: object) -> tuple[Path, str]:
    project = make_project(folder)
    add_revision(project, "r1", None, upgrade=SCHEMA,
                 downgrade='op.execute("DROP SEQUENCE invoice_numbers")\n'
                           'op.execute("DROP TABLE orders")\nop.execute("DROP TYPE state")')
    module = f"models_{uuid.uuid4().hex[:8]}"
    (project / f"{module}.py").write_text(MODELS.format(**{**MATCHING, **changes}),
                                          encoding="utf-8")
    return project, f"{module}:metadata"


def drift_of(folder: Path, url: str, **changes: object) -> list[str]:
    project, metadata = project_with_models(folder, **changes)
    report = run_checks(settings_for(project, url, metadata=metadata), url)
    failures = report.failures_of("drift")
    return list(failures[0].details) if failures else []


def test_models_that_match_have_no_drift(tmp_path: Path, database_url: str) -> None:
    # Expression and partial indexes: Alembic's comparison reports these when switched on.
    assert drift_of(tmp_path, database_url) == []


@pytest.mark.parametrize(("change", "expected"), [
    ({"default": "paid"}, "column orders.state: default 'paid'::state -> 'new'::state"),
    ({"email_nullable": True}, "column orders.email: nullable yes -> no"),
    ({"labels": "'new', 'paid', 'void'"}, "enum state: labels new, paid, void -> new, paid"),
    ({"check": "orders_total_check"}, "constraint orders.orders_total_check: missing"),
    ({"start": 1}, "sequence invoice_numbers: start 1 -> 1000"),
])
def test_each_difference_is_named(tmp_path: Path, database_url: str,
                                  change: dict[str, object], expected: str) -> None:
    found = drift_of(tmp_path, database_url, **change)
    assert expected in found, found


def test_doctor_names_a_changed_default(tmp_path: Path, database_url: str) -> None:
    project, metadata = project_with_models(tmp_path, default="paid")
    settings = settings_for(project, database_url, metadata=metadata)
    migrate.upgrade(settings, allow_unsafe=True)
    result = doctor_cmd.doctor(settings)
    messages = [f.message for f in result.findings if f.code == "drift"]
    assert "models and database differ (models -> database): column orders.state: default " \
           "'paid'::state -> 'new'::state" in messages, result.findings
