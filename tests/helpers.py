"""Small Alembic projects for tests, written through `umbau init`."""

from __future__ import annotations

import textwrap
from pathlib import Path

from umbau.commands.init import init
from umbau.settings import Settings, load_settings

REVISION = '''\
"""{message}

Breaking changes:
- none

Migration guide:
- nothing to do
"""
from alembic import op
import sqlalchemy as sa

revision = {revision!r}
down_revision = {down!r}
branch_labels = None
depends_on = None


def upgrade():
{upgrade}


def downgrade():
{downgrade}
'''


def make_project(folder: Path) -> Path:
    """An empty umbau-initialised project in ``folder``."""
    init(load_settings(cwd=folder, environ={}), folder)
    return folder


def add_revision(project: Path, revision: str, down: str | tuple[str, ...] | None,
                 upgrade: str = "pass", downgrade: str = "pass",
                 message: str | None = None) -> Path:
    path = project / "migrations" / "versions" / f"{revision}.py"
    path.write_text(REVISION.format(
        message=message or f"revision {revision}", revision=revision, down=down,
        upgrade=textwrap.indent(textwrap.dedent(upgrade).strip(), "    "),
        downgrade=textwrap.indent(textwrap.dedent(downgrade).strip(), "    "),
    ), encoding="utf-8")
    return path


def linear_project(folder: Path, count: int = 3) -> Path:
    """``count`` revisions r1..rN, each creating table t<i>."""
    make_project(folder)
    down = None
    for i in range(1, count + 1):
        add_revision(folder, f"r{i}", down,
                     upgrade=f'op.create_table("t{i}", sa.Column("id", sa.BigInteger, '
                             f'primary_key=True), sa.Column("v", sa.Text))',
                     downgrade=f'op.drop_table("t{i}")')
        down = f"r{i}"
    return folder


def settings_for(project: Path, url: str | None, **flags: object) -> Settings:
    values = {"database_url": url, **flags}
    return load_settings(cwd=project, environ={}, flags=values)
