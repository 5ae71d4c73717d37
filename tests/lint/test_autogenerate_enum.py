"""`umbau new --autogenerate` writes the creation of an enum type a new column needs
(issue 12): Alembic's add_column never creates it, so the revision failed on every
database without the type, and lint flags it (enum-type-not-created)."""

from __future__ import annotations

from pathlib import Path

from helpers import linear_project, settings_for
from sqlalchemy import text

from umbau.commands import migrate, new
from umbau.commands.lint import lint
from umbau.postgres.connect import connect

MODELS = """import sqlalchemy as sa
metadata = sa.MetaData()
sa.Table('t1', metadata, sa.Column('id', sa.BigInteger, primary_key=True),
         sa.Column('v', sa.Text),
         sa.Column('status', sa.Enum('new', "o'paid", name='order_status')))
"""


def test_autogenerate_creates_and_drops_the_enum_type(tmp_path: Path, database_url: str) -> None:
    project = linear_project(tmp_path, 1)
    (project / "enum_models.py").write_text(MODELS)
    env = project / "migrations" / "env.py"
    env.write_text(env.read_text().replace(
        "target_metadata = None",
        f"import sys\nsys.path.insert(0, {str(project)!r})\n"
        "from enum_models import metadata as target_metadata"))
    settings = settings_for(project, database_url)
    migrate.upgrade(settings)
    created = new.new(settings, "add status", autogenerate=True)
    body = Path(created.path).read_text()
    create = body.index("op.execute('CREATE TYPE \"order_status\" AS ENUM "
                        "(\\'new\\', \\'o\\'\\'paid\\')')")
    assert create < body.index("op.add_column('t1'")
    assert body.index("op.drop_column('t1', 'status')") < body.index(
        """op.execute('DROP TYPE "order_status"')""")
    assert [f.rule for f in lint(settings, offline=True).findings
            if f.rule == "enum-type-not-created"] == []
    assert migrate.upgrade(settings).after == (created.revision,)
    migrate.downgrade(settings, "r1", yes=True)
    with connect(database_url) as conn:  # the downgrade dropped the type again
        assert conn.execute(text("SELECT count(*) FROM pg_type "
                                 "WHERE typname = 'order_status'")).scalar() == 0
