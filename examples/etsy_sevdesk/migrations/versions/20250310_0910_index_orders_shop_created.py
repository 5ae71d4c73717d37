"""index orders (shop_id, created_at) concurrently

Revision ID: a71c9e3d5b48
Revises: 8d4b1f07c2e9
Create Date: 2025-03-10 09:10:00.000000+00:00

Release 1.1.0, step 3 of 6: the guide's ``idx_orders_shop_created``, built with
CREATE INDEX CONCURRENTLY so that the sync job keeps writing orders while it is
built. CONCURRENTLY cannot run inside a transaction: Alembic's
``autocommit_block()`` commits first and runs the statement on its own.

If the build fails (or is interrupted), PostgreSQL leaves an INVALID index
behind; ``IF NOT EXISTS`` would then keep it, so the upgrade drops a leftover
invalid index before building it again.

Breaking changes:
- none

Migration guide:
- nothing to do
"""
from __future__ import annotations

from alembic import op

# revision identifiers, used by Alembic.
revision = "a71c9e3d5b48"
down_revision = "8d4b1f07c2e9"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute(
            """
            DO $$
            BEGIN
                IF EXISTS (SELECT 1 FROM pg_index
                           WHERE indexrelid = to_regclass('idx_orders_shop_created')
                             AND NOT indisvalid) THEN
                    DROP INDEX idx_orders_shop_created;
                END IF;
            END
            $$
            """
        )
        op.create_index(
            "idx_orders_shop_created", "orders", ["shop_id", "created_at"],
            postgresql_concurrently=True, if_not_exists=True,
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index(
            "idx_orders_shop_created", table_name="orders",
            postgresql_concurrently=True, if_exists=True,
        )
