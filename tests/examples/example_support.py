"""The example applications, each on a fresh database, for the tests of tests/examples."""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from sqlalchemy import text

from umbau.commands import migrate
from umbau.postgres.connect import connect
from umbau.runner import MigrateResult
from umbau.settings import Settings, load_settings

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PACKAGES = {"etsy_sevdesk": "etsy_app", "ablage": "ablage_app"}
UMBAU_TABLES = {"umbau_history", "umbau_backfills", "umbau_backfill_chunks", "alembic_version"}


def example_module(example: str, module: str = "") -> ModuleType:
    """Import ``<package>[.module]`` of an example, the way the demo does."""
    folder = str(EXAMPLES / example)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    name = PACKAGES[example] + (f".{module}" if module else "")
    return importlib.import_module(name)


@dataclass
class Example:
    """An example application and the fresh database it migrates."""

    name: str
    url: str
    # Ablage keeps two dangerous steps of its guide on purpose (a plain CREATE INDEX, a
    # column type change), which umbau's lint gate may refuse unless they are allowed.
    allow_unsafe: bool = False

    @property
    def folder(self) -> Path:
        return EXAMPLES / self.name

    @property
    def settings(self) -> Settings:
        return load_settings(cwd=self.folder, environ={}, flags={"database_url": self.url})

    @property
    def releases(self) -> dict[str, str]:
        return dict(example_module(self.name).RELEASES)

    def upgrade(self, target: str = "head", **kw: Any) -> MigrateResult:
        """``umbau upgrade``; a release name (``"1.0.0"``) means its last revision."""
        kw.setdefault("allow_unsafe", self.allow_unsafe)
        kw.setdefault("backup", "never")  # keep test backups out of the example folders
        return migrate.upgrade(self.settings, self.releases.get(target, target), **kw)

    def downgrade(self, target: str) -> MigrateResult:
        return migrate.downgrade(self.settings, self.releases.get(target, target), yes=True)

    def generate(self, n: int, seed: int = 0) -> dict[str, int]:
        datagen = example_module(self.name, "datagen")
        counts: dict[str, int] = datagen.generate(self.url, n, seed=seed)
        return counts

    def rows(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        with connect(self.url) as conn:
            return [tuple(row) for row in conn.execute(text(sql), params)]

    def scalar(self, sql: str, **params: Any) -> Any:
        with connect(self.url) as conn:
            return conn.execute(text(sql), params).scalar()

    def execute(self, *statements: str) -> None:
        with connect(self.url) as conn:
            for statement in statements:
                conn.execute(text(statement))
            conn.commit()

    def current(self) -> set[str]:
        return {row[0] for row in self.rows("SELECT version_num FROM alembic_version")}

    def app_tables(self) -> set[str]:
        found = {row[0] for row in self.rows(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        return found - UMBAU_TABLES

    def fingerprint(self) -> dict[str, str]:
        """An md5 of every application table's rows, by column name, in a stable order.

        Rows are taken as JSON objects so that a column dropped and added again (at
        the end of the table) compares equal to the original.
        """
        prints = {}
        for table in sorted(self.app_tables()):
            prints[table] = self.scalar(
                "SELECT md5(coalesce(string_agg(r, '|' ORDER BY r), '')) "
                f"FROM (SELECT to_jsonb(t)::text AS r FROM {table} AS t) AS rows")
        return prints

    def drift(self) -> list[Any]:
        """What Alembic's compare_metadata finds between the models and the database."""
        from alembic.autogenerate import compare_metadata
        from alembic.migration import MigrationContext

        metadata = example_module(self.name, "models").Base.metadata

        def include_name(name: str | None, type_: str, parent: Any) -> bool:
            return not (type_ == "table" and name in UMBAU_TABLES)

        with connect(self.url) as conn:
            context = MigrationContext.configure(conn, opts={
                "compare_type": True, "compare_server_default": True,
                "include_name": include_name})
            return list(compare_metadata(context, metadata))
