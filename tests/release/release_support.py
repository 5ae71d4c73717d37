"""A small Alembic project with a release plan, for the release tests."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from helpers import add_revision, make_project, settings_for
from sqlalchemy import text

from umbau.commands import migrate
from umbau.postgres.connect import connect
from umbau.settings import Settings

# r1 creates orders (the "1.0.0" schema); r2 and r3 are the release's revisions.
R2_UP = 'op.add_column("orders", sa.Column("total", sa.Integer))'
R2_DOWN = 'op.drop_column("orders", "total")'
R3_UP = 'op.create_table("shops", sa.Column("id", sa.Integer, primary_key=True))'
R3_DOWN = 'op.drop_table("shops")'


def release_project(folder: Path, url: str, *, r3_down: str = R3_DOWN) -> Path:
    """A project at r1 with rows in orders; r2, r3 pending. Backups go to folder/backups."""
    make_project(folder)
    add_revision(folder, "r1", None,
                 upgrade='op.create_table("orders", sa.Column("id", sa.Integer, '
                         'primary_key=True), sa.Column("amount", sa.Integer))',
                 downgrade='op.drop_table("orders")')
    add_revision(folder, "r2", "r1", upgrade=R2_UP, downgrade=R2_DOWN)
    add_revision(folder, "r3", "r2", upgrade=R3_UP, downgrade=r3_down)
    toml = folder / "umbau.toml"  # written by `umbau init`: the [tool.umbau] table
    toml.write_text(toml.read_text() + '\n[tool.umbau.backup]\ndir = "backups"\n',
                    encoding="utf-8")
    migrate.upgrade(settings(folder, url), "r1", backup="never")
    with connect(url) as conn:
        conn.execute(text("INSERT INTO orders (id, amount) SELECT g, g * 10 "
                          "FROM generate_series(1, 50) g"))
        conn.commit()
    (folder / ".env").write_text("# the shop\nDATABASE_URL=postgresql://x/y\n"
                                 "ETSY_SHOP_ID=42\nLEGACY_MODE=1\n", encoding="utf-8")
    return folder


def settings(folder: Path, url: str) -> Settings:
    return settings_for(folder, url)


def write_plan(folder: Path, steps: str, *, version: str = "1.1.0",
               header: str = "") -> Path:
    path = folder / "releases.toml"
    path.write_text(f'[releases."{version}"]\nfrom = "1.0.0"\n{header}\n'
                    + textwrap.dedent(steps).replace("STEP", f'[[releases."{version}".steps]]'),
                    encoding="utf-8")
    return path


def snapshot(url: str, folder: Path) -> dict[str, Any]:
    """What a rollback must give back: revision, tables and their rows, the env file."""
    with connect(url) as conn:
        revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        tables = sorted(conn.execute(text(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
            "AND table_name NOT LIKE 'umbau%' AND table_name <> 'alembic_version'"
        )).scalars())
        columns = sorted(conn.execute(text(
            "SELECT table_name || '.' || column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name = 'orders'")).scalars())
        orders = conn.execute(text("SELECT id, amount FROM orders ORDER BY id")).all()
    return {"revision": revision, "tables": tables, "columns": columns,
            "orders": [tuple(r) for r in orders],
            "env": (folder / ".env").read_text(encoding="utf-8")}


def release_rows(url: str) -> list[tuple[str, str, str]]:
    with connect(url) as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT step_name, kind, outcome FROM umbau_releases ORDER BY id"))]


def umbau(folder: Path, url: str, *args: str,
          environ: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """The real `umbau` in a subprocess (kill -9, concurrency)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("UMBAU_") and k != "DATABASE_URL"}
    env.update(environ or {})
    env["UMBAU_DATABASE_URL"] = url
    return subprocess.Popen([sys.executable, "-m", "umbau", *args], cwd=folder, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
