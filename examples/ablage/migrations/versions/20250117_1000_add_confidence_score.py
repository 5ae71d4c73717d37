"""add confidence score to documents

Revision ID: a1b2c3d4e5f6
Revises: f6e5d4c3b2a1
Create Date: 2025-01-17 10:00:00.000000+00:00

Release 1.0.0: ``documents.confidence_score``, the OCR confidence (0.0-1.0),
and a partial index to filter documents by it. The guide builds the index with
a plain ``op.create_index``, under a SHARE lock: every upload and OCR update
would wait until the index is built (`umbau lint`: require-concurrent-index-
creation). ``ops.create_index`` builds it CONCURRENTLY in an autocommit block
instead, drops an invalid leftover of an interrupted build first, and checks
that the index is valid afterwards.

Breaking changes:
- none: a new, nullable column

Migration guide:
- nothing to do
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from umbau import ops

# revision identifiers, used by Alembic.
revision = "a1b2c3d4e5f6"
down_revision = "f6e5d4c3b2a1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add confidence_score column to documents table."""
    op.add_column(
        "documents",
        sa.Column(
            "confidence_score",
            sa.Float,
            nullable=True,
            comment="OCR confidence score (0.0-1.0)",
        ),
    )

    # Create index for filtering by confidence, without blocking writes
    ops.create_index(
        "ix_documents_confidence_score",
        "documents",
        ["confidence_score"],
        where="confidence_score IS NOT NULL",
    )


def downgrade() -> None:
    """Remove confidence_score column."""
    ops.drop_index("ix_documents_confidence_score", "documents")
    op.drop_column("documents", "confidence_score")
