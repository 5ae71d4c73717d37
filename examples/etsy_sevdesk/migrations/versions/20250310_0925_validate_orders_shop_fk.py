"""validate the orders.shop_id foreign key

Revision ID: f2b87e5d0a39
Revises: e93d6a4c1f27
Create Date: 2025-03-10 09:25:00.000000+00:00

Release 1.1.0, step 6 of 6: ``ops.validate`` runs VALIDATE CONSTRAINT in a
transaction of its own (an autocommit block), under lock_timeout with umbau's
retries. It scans the existing orders under a SHARE UPDATE EXCLUSIVE lock,
which lets reads and writes go on (adding a validated foreign key would block
writes for the whole scan). ``ops.add_foreign_key`` does both halves in one
call; here they are apart because the constraint must guard the orders from
step 2 on, while the data steps assign their shops.

A post-deploy step (``phase = "post"``), after the orders got their shop.

The downgrade puts the constraint back to NOT VALID (drop and add again, both
catalog-only), which is the state before this revision.

Breaking changes:
- none

Migration guide:
- nothing to do
"""
from __future__ import annotations

from alembic import op

from umbau import ops

# revision identifiers, used by Alembic.
revision = "f2b87e5d0a39"
down_revision = "e93d6a4c1f27"
branch_labels = None
depends_on = None
phase = "post"  # after the orders got their shop


def upgrade() -> None:
    ops.validate("orders", "fk_orders_shop_id_shops")


def downgrade() -> None:
    op.drop_constraint("fk_orders_shop_id_shops", "orders", type_="foreignkey")
    op.create_foreign_key(
        "fk_orders_shop_id_shops", "orders", "shops", ["shop_id"], ["id"],
        postgresql_not_valid=True,
    )
