"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}

What this revision does, and why.

Breaking changes:
- none

Migration guide:
- nothing to do
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa
${context.get("imports", None) or ""}

# revision identifiers, used by Alembic.
revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}


def upgrade() -> None:
    ${context.get("upgrades", None) or "pass"}


def downgrade() -> None:
% if context.get("umbau_merge", False) or (context.get("downgrades", None) or "pass").strip() != "pass":
    ${context.get("downgrades", None) or "pass"}
% else:
    raise NotImplementedError(
        "downgrade of ${up_revision} is not written yet: write it, or restore a backup"
    )
% endif
