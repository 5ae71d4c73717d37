import sqlalchemy as sa
from alembic import op


def upgrade():
    op.add_column("documents", sa.Column("score", sa.Float(), nullable=True))


def downgrade() -> None:
    raise NotImplementedError("downgrade is not written yet: write it, or restore a backup")
