"""create shops

Revision ID: 6a2e4c81b3f5
Revises: 3f1c2a9b7d10
Create Date: 2025-03-10 09:00:00.000000+00:00

Release 1.1.0, step 1 of 6 (multi-shop support): the new ``shops`` table, as
planned in the migration guide (with NOT NULL on ``active`` and
``created_at``). A new, empty table: nobody waits for this.

Breaking changes:
- none

Migration guide:
- nothing to do
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "6a2e4c81b3f5"
down_revision = "3f1c2a9b7d10"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shops",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("etsy_shop_id", sa.String(100), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.text("now()")),
        sa.UniqueConstraint("etsy_shop_id", name="uq_shops_etsy_shop_id"),
    )


def downgrade() -> None:
    op.drop_table("shops")
