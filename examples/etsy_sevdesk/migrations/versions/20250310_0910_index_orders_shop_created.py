"""index orders (shop_id, created_at) concurrently

Revision ID: a71c9e3d5b48
Revises: 8d4b1f07c2e9
Create Date: 2025-03-10 09:10:00.000000+00:00

Release 1.1.0, step 3 of 6: the guide's ``idx_orders_shop_created``, built by
``ops.create_index``: CREATE INDEX CONCURRENTLY (the sync job keeps writing
orders while it is built) in an autocommit block, since CONCURRENTLY cannot run
inside a transaction.

If the build fails or is interrupted, PostgreSQL leaves an INVALID index
behind that ``IF NOT EXISTS`` would keep: ``ops.create_index`` drops such a
leftover first, checks ``indisvalid`` after the build and builds again (a
bounded number of times) when a lock timeout cut it short.

Breaking changes:
- none

Migration guide:
- nothing to do
"""
from __future__ import annotations

from alembic import op  # noqa: F401 - Alembic's proxy, used through umbau.ops

from umbau import ops

# revision identifiers, used by Alembic.
revision = "a71c9e3d5b48"
down_revision = "8d4b1f07c2e9"
branch_labels = None
depends_on = None


def upgrade() -> None:
    ops.create_index("idx_orders_shop_created", "orders", ["shop_id", "created_at"])


def downgrade() -> None:
    ops.drop_index("idx_orders_shop_created", "orders")
