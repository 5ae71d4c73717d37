"""add confidence score to documents

Revision ID: a1b2c3d4e5f6
Revises: f6e5d4c3b2a1
Create Date: 2025-01-17 10:00:00.000000+00:00

Release 1.0.0: ``documents.confidence_score``, the OCR confidence (0.0-1.0),
and a partial index to filter documents by it. Written exactly as in the
migration guide, including its known danger: ``op.create_index`` without
``postgresql_concurrently=True`` builds the index under a SHARE lock, so every
upload and OCR update waits until the index is built. `umbau lint` reports it
(require-concurrent-index-creation) with the safe rewrite (CREATE INDEX
CONCURRENTLY in an autocommit block), and `umbau upgrade` refuses to run it
without --allow-unsafe.

Breaking changes:
- none: a new, nullable column

Migration guide:
- nothing to do
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

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

    # Create index for filtering by confidence
    op.create_index(
        "ix_documents_confidence_score",
        "documents",
        ["confidence_score"],
        postgresql_where=sa.text("confidence_score IS NOT NULL"),
    )


def downgrade() -> None:
    """Remove confidence_score column."""
    op.drop_index("ix_documents_confidence_score", table_name="documents")
    op.drop_column("documents", "confidence_score")
