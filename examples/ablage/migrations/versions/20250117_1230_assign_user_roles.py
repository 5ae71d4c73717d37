"""assign roles from users.role

Revision ID: d4e5f6a7b8c9
Revises: c3d4e5f6a7b8
Create Date: 2025-01-17 12:30:00.000000+00:00

Release 1.0.0, the roles refactor, step 2 of 3 (data): the three roles of the
guide with their fixed ids and permissions, and one ``user_roles`` row per user
from ``users.role``, with one INSERT ... SELECT instead of the guide's loop over
users. Users whose role is NULL get no role (as in the guide).

Before it changes anything, the upgrade refuses when a user has a role other
than admin, user or viewer (the guide's loop silently skipped those users, who
then lost their permissions).

The downgrade writes each user's role back into ``users.role`` (1.0.0 code
changes roles in ``user_roles`` only) and removes the assignments and the three
roles. It refuses, changing nothing, when a user has more than one role or a
role other than the three: ``users.role`` cannot hold that. Reduce those users
to one of admin, user or viewer, or restore the backup taken before the upgrade.

Breaking changes:
- permissions come from roles/user_roles; 1.0.0 code no longer writes
  users.role (it stays, unused, until release 2.0.0 drops it)

Migration guide:
- before the upgrade: SELECT DISTINCT role FROM users must list only admin,
  user, viewer (or NULL)
- give a user a role with INSERT INTO user_roles (user_id, role_id) instead of
  UPDATE users SET role = ...
"""
from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "d4e5f6a7b8c9"
down_revision = "c3d4e5f6a7b8"
branch_labels = None
depends_on = None

ROLES = [
    {
        "id": "a1111111-1111-1111-1111-111111111111",
        "name": "admin",
        "description": "Administrator with full access",
        "permissions": {
            "documents": ["create", "read", "update", "delete"],
            "users": ["create", "read", "update", "delete"],
            "settings": ["read", "update"],
            "analytics": ["read"],
        },
    },
    {
        "id": "b2222222-2222-2222-2222-222222222222",
        "name": "user",
        "description": "Regular user with standard access",
        "permissions": {
            "documents": ["create", "read", "update", "delete"],
            "users": ["read"],
            "settings": ["read"],
            "analytics": ["read"],
        },
    },
    {
        "id": "c3333333-3333-3333-3333-333333333333",
        "name": "viewer",
        "description": "Read-only access",
        "permissions": {
            "documents": ["read"],
            "users": [],
            "settings": ["read"],
            "analytics": ["read"],
        },
    },
]
ROLE_IDS = ", ".join(f"'{role['id']}'" for role in ROLES)
ROLE_NAMES = ", ".join(f"'{role['name']}'" for role in ROLES)


def upgrade() -> None:
    # Refuse before anything changes: a role outside the mapping would be lost.
    op.execute(
        f"""
        DO $$
        DECLARE
            unknown text;
        BEGIN
            SELECT string_agg(DISTINCT quote_literal(role), ', ') INTO unknown
            FROM users
            WHERE role IS NOT NULL AND role NOT IN ({ROLE_NAMES});
            IF unknown IS NOT NULL THEN
                RAISE EXCEPTION USING MESSAGE =
                    'users have roles other than admin, user and viewer (' || unknown
                    || '): set them to one of the three first (UPDATE users SET role = ...)'
                    || ' and run the upgrade again';
            END IF;
        END
        $$
        """
    )

    insert_role = sa.text(
        "INSERT INTO roles (id, name, description, permissions) "
        "VALUES (CAST(:id AS uuid), :name, :description, CAST(:permissions AS jsonb))"
    )
    for role in ROLES:
        op.execute(insert_role.bindparams(
            id=role["id"], name=role["name"], description=role["description"],
            permissions=json.dumps(role["permissions"]),
        ))

    op.execute(
        f"""
        INSERT INTO user_roles (user_id, role_id)
        SELECT u.id, r.id
        FROM users AS u
        JOIN roles AS r ON r.name = u.role
        WHERE r.id IN ({ROLE_IDS})
        """
    )


def downgrade() -> None:
    # Refuse before anything changes: users.role holds one of the three roles.
    op.execute(
        f"""
        DO $$
        DECLARE
            ambiguous bigint;
        BEGIN
            SELECT count(*) INTO ambiguous
            FROM (SELECT ur.user_id
                  FROM user_roles AS ur
                  GROUP BY ur.user_id
                  HAVING count(*) > 1
                      OR bool_or(ur.role_id NOT IN ({ROLE_IDS}))) AS users_with_more;
            IF ambiguous > 0 THEN
                RAISE EXCEPTION USING MESSAGE =
                    'cannot downgrade the roles: ' || ambiguous || ' users have more than one'
                    || ' role or a role other than admin, user and viewer, which users.role'
                    || ' cannot hold; reduce them to one of the three, or restore the backup'
                    || ' taken before the upgrade';
            END IF;
        END
        $$
        """
    )
    op.execute(
        """
        UPDATE users AS u
        SET role = r.name
        FROM user_roles AS ur
        JOIN roles AS r ON r.id = ur.role_id
        WHERE ur.user_id = u.id AND u.role IS DISTINCT FROM r.name
        """
    )
    op.execute(
        """
        UPDATE users AS u
        SET role = NULL
        WHERE u.role IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM user_roles AS ur WHERE ur.user_id = u.id)
        """
    )
    op.execute("DELETE FROM user_roles")
    op.execute(f"DELETE FROM roles WHERE id IN ({ROLE_IDS})")

