"""insert the default shop

Revision ID: c5f08b2a9e61
Revises: a71c9e3d5b48
Create Date: 2025-03-10 09:15:00.000000+00:00

Release 1.1.0, step 4 of 6 (data): the guide's ``scripts/create_default_shop.py``
as a revision. Release 1.0.0 served one shop, named by ``ETSY_SHOP_ID`` and
cached by the sync job in ``integration_state['etsy.shop']``; that shop becomes
the default shop. A database without that entry (a fresh install) gets a
placeholder shop ``default`` to rename later.

The id of the default shop is kept in ``integration_state['default_shop']``, so
that the next revision and this downgrade find it without guessing ``id = 1``.

Breaking changes:
- the environment variable ETSY_SHOP_ID is now ETSY_DEFAULT_SHOP_ID
- the API endpoint /api/sync is now /api/v1/sync

Migration guide:
- sed -i 's/ETSY_SHOP_ID/ETSY_DEFAULT_SHOP_ID/g' .env
- external API clients: call /api/v1/sync instead of /api/sync
"""
from __future__ import annotations

from alembic import op

# revision identifiers, used by Alembic.
revision = "c5f08b2a9e61"
down_revision = "a71c9e3d5b48"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        WITH configured AS (
            SELECT coalesce(s.value ->> 'shop_id', 'default') AS etsy_shop_id,
                   coalesce(s.value ->> 'shop_name', 'Default shop') AS name
            FROM (SELECT 1) AS one
            LEFT JOIN integration_state AS s ON s.key = 'etsy.shop'
        ), shop AS (
            INSERT INTO shops (etsy_shop_id, name)
            SELECT etsy_shop_id, name FROM configured
            RETURNING id, etsy_shop_id
        )
        INSERT INTO integration_state (key, value)
        SELECT 'default_shop', jsonb_build_object('shop_id', id, 'etsy_shop_id', etsy_shop_id)
        FROM shop
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DELETE FROM shops
        WHERE id = (SELECT (value ->> 'shop_id')::integer
                    FROM integration_state WHERE key = 'default_shop')
        """
    )
    op.execute("DELETE FROM integration_state WHERE key = 'default_shop'")
