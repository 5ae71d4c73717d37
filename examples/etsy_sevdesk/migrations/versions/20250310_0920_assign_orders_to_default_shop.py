"""assign existing orders to the default shop

Revision ID: e93d6a4c1f27
Revises: c5f08b2a9e61
Create Date: 2025-03-10 09:20:00.000000+00:00

Release 1.1.0, step 5 of 6 (data): the guide's
``UPDATE orders SET shop_id = 1 WHERE shop_id IS NULL``, with the default
shop's id taken from ``integration_state['default_shop']`` instead of assuming
``1``. One set-based UPDATE; it only touches orders that have no shop yet, so a
rerun does nothing. A post-deploy step (``phase = "post"``): a 1.0.0 process
still running during the rollout writes orders without a shop, which an earlier
UPDATE would miss.

The downgrade sets ``shop_id`` back to NULL for the default shop's orders:
during 1.1.0 a NULL ``shop_id`` and the default shop mean the same, so nothing
is lost.

Breaking changes:
- none

Migration guide:
- nothing to do
"""
from __future__ import annotations

from alembic import op

# revision identifiers, used by Alembic.
revision = "e93d6a4c1f27"
down_revision = "c5f08b2a9e61"
branch_labels = None
depends_on = None
phase = "post"  # after the rollout: 1.0.0 writes orders without a shop

DEFAULT_SHOP = (
    "(SELECT (value ->> 'shop_id')::integer FROM integration_state WHERE key = 'default_shop')"
)


def upgrade() -> None:
    op.execute(f"UPDATE orders SET shop_id = {DEFAULT_SHOP} WHERE shop_id IS NULL")


def downgrade() -> None:
    op.execute(f"UPDATE orders SET shop_id = NULL WHERE shop_id = {DEFAULT_SHOP}")
