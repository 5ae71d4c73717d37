"""The ops tests' project: its first revision creates ``docs`` (with rows) and ``owners``;
the tests add revisions that use ``umbau.ops``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helpers import add_revision, settings_for
from sqlalchemy import text

from umbau.commands import migrate
from umbau.postgres.connect import connect
from umbau.settings import Settings

BASE = '''
op.create_table("owners", sa.Column("id", sa.BigInteger, primary_key=True))
op.create_table(
    "docs",
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("owner_id", sa.BigInteger),
    sa.Column("ocr_text", sa.Text),
    sa.Column("score", sa.Float),
    sa.Column("code", sa.String(10)),
)
op.execute("INSERT INTO owners SELECT g FROM generate_series(1, 10) g")
op.execute("INSERT INTO docs SELECT g, 1 + g % 10, 'text ' || g, g / 1000.0, 'c' || g "
           "FROM generate_series(1, {rows}) g")
'''


@dataclass
class OpsProject:
    path: Path
    url: str
    last: str | None = None

    def settings(self, **flags: Any) -> Settings:
        return settings_for(self.path, self.url, **flags)

    def add(self, revision: str, upgrade: str, downgrade: str = "pass",
            phase: str | None = None) -> Path:
        path = add_revision(self.path, revision, self.last, upgrade=upgrade,
                            downgrade=downgrade)
        source = path.read_text(encoding="utf-8").replace(
            "import sqlalchemy as sa\n", "import sqlalchemy as sa\nfrom umbau import ops\n")
        if phase:
            source = source.replace("depends_on = None\n",
                                    f'depends_on = None\nphase = "{phase}"\n')
        path.write_text(source, encoding="utf-8")
        self.last = revision
        return path

    def upgrade(self, target: str = "head", *, retry_partial: bool = False, **kw: Any) -> Any:
        flags = kw.pop("flags", {})
        settings = self.settings(**flags)
        if retry_partial:  # `umbau upgrade --retry-partial`
            upgrade_section = {**settings.section("upgrade"), "retry_partial": True}
            settings = settings.with_overrides(
                sections={**settings.sections, "upgrade": upgrade_section})
        return migrate.upgrade(settings, target, backup="never", **kw)

    def sql(self, target: str) -> str:
        return migrate.upgrade_sql(self.settings(), target).sql

    def rows(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        with connect(self.url) as conn:
            return [tuple(r) for r in conn.execute(text(sql), params)]

    def scalar(self, sql: str, **params: Any) -> Any:
        found = self.rows(sql, **params)
        return found[0][0] if found else None

    def execute(self, *sql: str) -> None:
        with connect(self.url) as conn:
            for statement in sql:
                conn.execute(text(statement))
            conn.commit()
