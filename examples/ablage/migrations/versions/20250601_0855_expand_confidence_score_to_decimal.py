"""expand: documents.confidence_score to DECIMAL(5,4), without a table rewrite

Revision ID: 5d2c6b1a0f9e
Revises: 2a9f3e8d7c6b
Create Date: 2025-06-01 08:55:00.000000+00:00

Release 2.0.0, before the deploy: the guide's "Change Column Type" pattern
(``ALTER COLUMN … TYPE numeric(5,4) USING …``) rewrites the whole table and its
indexes under an ACCESS EXCLUSIVE lock, so no one could even read documents
until it is done. ``ops.change_type`` asks the server first (the change is
tried on an empty copy): float to numeric needs a rewrite, so it expands
instead: a shadow column ``confidence_score_umbau_new NUMERIC(5,4)`` kept equal
to ``confidence_score::numeric(5,4)`` by a trigger on every write of either
application version, a concurrent copy of ``ix_documents_confidence_score`` on
it, and a batched backfill. The contract (6e3d7c2b1a0f, after the deploy) swaps
the columns.

Scores are rounded to four decimal places (0.953712 -> 0.9537). The downgrade
drops the shadow column and the trigger; the float scores were never changed.

Breaking changes:
- none yet: both versions read and write the float column until the contract

Migration guide:
- nothing to do before the contract (6e3d7c2b1a0f)
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op  # noqa: F401 - Alembic's proxy, used through umbau.ops

from umbau import ops

# revision identifiers, used by Alembic.
revision = "5d2c6b1a0f9e"
down_revision = "2a9f3e8d7c6b"
branch_labels = None
depends_on = None


def upgrade() -> None:
    ops.change_type("documents", "confidence_score", sa.Numeric(precision=5, scale=4),
                    using="confidence_score::numeric(5,4)", existing_type=sa.Float())


def downgrade() -> None:
    ops.revert_change_type("documents", "confidence_score", sa.Float(),
                           using="confidence_score::double precision")
