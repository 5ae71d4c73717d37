"""Alembic environment, written by `umbau init`.

It follows Alembic's connection-sharing recipe: when a caller such as umbau
hands over a connection in ``config.attributes["connection"]``, that connection
is used; otherwise (plain ``alembic`` on the command line) an engine is made
from ``sqlalchemy.url`` or the DATABASE_URL environment variable.
"""
from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import engine_from_config, pool

config = context.config

if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

# Your models' MetaData, for --autogenerate, e.g.:
#   from myapp.models import Base
#   target_metadata = Base.metadata
target_metadata = ${metadata_expr}


# umbau's own tables (run history, backfill state, release steps) are not part of your
# models: keep `alembic revision --autogenerate` from dropping them.
UMBAU_TABLES = {"umbau_history", "umbau_backfills", "umbau_backfill_chunks", "umbau_releases"}


def include_name(name, type_, parent_names) -> bool:
    return not (type_ == "table" and name in UMBAU_TABLES)


def _url(required: bool = True) -> str | None:
    url = os.environ.get("DATABASE_URL") or config.get_main_option("sqlalchemy.url")
    if not url:
        if not required:
            return None
        raise SystemExit("set DATABASE_URL or sqlalchemy.url in alembic.ini")
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def run_migrations_offline() -> None:
    url = _url(required=False)  # --sql needs no server: PostgreSQL's dialect is enough
    context.configure(
        url=url,
        dialect_name=None if url else "postgresql",
        target_metadata=target_metadata,
        include_name=include_name,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_name=include_name,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection", None)
    if connectable is not None:
        do_run_migrations(connectable)
        return
    engine = engine_from_config(
        {"sqlalchemy.url": _url()}, prefix="sqlalchemy.", poolclass=pool.NullPool
    )
    with engine.connect() as connection:
        do_run_migrations(connection)
        connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
