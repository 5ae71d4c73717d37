import sqlalchemy as sa
from alembic import op


def upgrade():
    op.add_column("documents", sa.Column("score", sa.Float(), nullable=True))
