"""drop users.role

Revision ID: 4c1b5a0f9e8d
Revises: 3b0a4f9e8d7c
Create Date: 2025-06-01 09:05:00.000000+00:00

Release 2.0.0, the roles refactor, step 3 of 3: the guide's "Step 5: Remove
old role column (after verification)". Since 1.0.0 permissions come from
``user_roles`` and 1.x code no longer writes ``users.role``; only 0.9 code read
it, and none runs any more. Dropping a column is a catalog change (no rewrite).

The downgrade restores ``users.role`` (nullable, default 'user', as it was),
filled from ``user_roles``: each user's role, the highest one (admin, then
user, then viewer) for a user with several; NULL for a user without a role.

Breaking changes:
- users.role is gone

Migration guide:
- read a user's roles from user_roles joined with roles
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "4c1b5a0f9e8d"
down_revision = "3b0a4f9e8d7c"
branch_labels = None
depends_on = None
# a drop: after the deploy, with the other contract steps of 2.0.0
phase = "post"


def upgrade() -> None:
    # umbau: ignore[drop-column] no code has read users.role since 1.0.0 (user_roles instead)
    op.drop_column("users", "role")


def downgrade() -> None:
    op.add_column("users", sa.Column("role", sa.String(20), nullable=True))
    op.execute(
        """
        UPDATE users AS u
        SET role = (SELECT r.name
                    FROM user_roles AS ur
                    JOIN roles AS r ON r.id = ur.role_id
                    WHERE ur.user_id = u.id
                    ORDER BY array_position(ARRAY['admin', 'user', 'viewer'], r.name::text)
                             NULLS LAST, r.name
                    LIMIT 1)
        """
    )
    op.alter_column("users", "role", server_default="user", existing_type=sa.String(20),
                    existing_nullable=True)
