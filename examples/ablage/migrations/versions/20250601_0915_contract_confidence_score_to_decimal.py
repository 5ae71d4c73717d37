"""contract: documents.confidence_score is DECIMAL(5,4)

Revision ID: 6e3d7c2b1a0f
Revises: 4c1b5a0f9e8d
Create Date: 2025-06-01 09:15:00.000000+00:00

Release 2.0.0, after the deploy (``phase = "post"``): the contract of
5d2c6b1a0f9e. ``ops.contract_change_type`` refuses unless its backfill has
finished and verified and every row's shadow column equals
``confidence_score::numeric(5,4)``; then, in one short transaction, it drops the
trigger and the float column, renames ``confidence_score_umbau_new`` to
``confidence_score`` and its index copy to ``ix_documents_confidence_score``,
and carries the column comment over. No table rewrite at any point.

The downgrade goes back to the expanded state without a rewrite either: the
column becomes the shadow column again, and the float column comes back, filled
by a backfill (the rounded values: the lost digits do not come back), with the
trigger and its index built concurrently.

Breaking changes:
- confidence_score is DECIMAL(5,4): Python gets Decimal instead of float

Migration guide:
- Python: confidence scores are decimal.Decimal (float(score) where a float is
  needed)
- frontend: no change (JSON serialisation handles it)
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op  # noqa: F401 - Alembic's proxy, used through umbau.ops

from umbau import ops

# revision identifiers, used by Alembic.
revision = "6e3d7c2b1a0f"
down_revision = "4c1b5a0f9e8d"
branch_labels = None
depends_on = None
# after the deploy, once no 1.x process runs
phase = "post"


def upgrade() -> None:
    ops.contract_change_type("documents", "confidence_score", sa.Numeric(precision=5, scale=4),
                             using="confidence_score::numeric(5,4)")


def downgrade() -> None:
    ops.revert_contract_change_type("documents", "confidence_score",
                                    sa.Numeric(precision=5, scale=4), sa.Float(),
                                    using="confidence_score::numeric(5,4)")
