"""add orders.shop_id with a NOT VALID foreign key

Revision ID: 8d4b1f07c2e9
Revises: 6a2e4c81b3f5
Create Date: 2025-03-10 09:05:00.000000+00:00

Release 1.1.0, step 2 of 6. The guide's ``ALTER TABLE orders ADD COLUMN
shop_id INTEGER REFERENCES shops(id)`` in its safe form:

- the column is nullable and has no default, so adding it only touches the
  catalog (no table rewrite);
- the foreign key is added NOT VALID: new and changed rows are checked from
  now on, but the existing orders are not scanned while the table is locked.
  Revision f2b87e5d0a39 validates it later, without blocking writes.

Breaking changes:
- none: 1.0.0 code does not know the column, and NULL means "the default shop"

Migration guide:
- nothing to do
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "8d4b1f07c2e9"
down_revision = "6a2e4c81b3f5"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("shop_id", sa.Integer, nullable=True))
    op.create_foreign_key(
        "fk_orders_shop_id_shops", "orders", "shops", ["shop_id"], ["id"],
        postgresql_not_valid=True,
    )


def downgrade() -> None:
    op.drop_constraint("fk_orders_shop_id_shops", "orders", type_="foreignkey")
    op.drop_column("orders", "shop_id")
