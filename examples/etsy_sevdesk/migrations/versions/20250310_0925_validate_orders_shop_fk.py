"""validate the orders.shop_id foreign key

Revision ID: f2b87e5d0a39
Revises: e93d6a4c1f27
Create Date: 2025-03-10 09:25:00.000000+00:00

Release 1.1.0, step 6 of 6: VALIDATE CONSTRAINT scans the existing orders
under a SHARE UPDATE EXCLUSIVE lock, which lets reads and writes go on (unlike
adding a validated foreign key, which blocks writes for the whole scan).

The downgrade puts the constraint back to NOT VALID (drop and add again, both
catalog-only), which is the state before this revision.

Breaking changes:
- none

Migration guide:
- nothing to do
"""
from __future__ import annotations

from alembic import op

# revision identifiers, used by Alembic.
revision = "f2b87e5d0a39"
down_revision = "e93d6a4c1f27"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE orders VALIDATE CONSTRAINT fk_orders_shop_id_shops")


def downgrade() -> None:
    op.drop_constraint("fk_orders_shop_id_shops", "orders", type_="foreignkey")
    op.create_foreign_key(
        "fk_orders_shop_id_shops", "orders", "shops", ["shop_id"], ["id"],
        postgresql_not_valid=True,
    )
