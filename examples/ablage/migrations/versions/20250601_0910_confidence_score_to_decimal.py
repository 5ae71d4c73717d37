"""change documents.confidence_score to DECIMAL(5,4)

Revision ID: 5d2c6b1a0f9e
Revises: 4c1b5a0f9e8d
Create Date: 2025-06-01 09:10:00.000000+00:00

Release 2.0.0: the guide's "Change Column Type" pattern, as the guide wrote
it. Known danger: changing double precision to numeric rewrites the whole
table and its indexes under an ACCESS EXCLUSIVE lock, so no one can even read
documents until it is done. `umbau lint` reports it (alter-column-type) and
`umbau upgrade` refuses to run it without --allow-unsafe; the safe way is
expand/contract with a new column, as for extracted_text.

The upgrade rounds scores to four decimal places (0.953712 -> 0.9537). The
downgrade changes the type back and keeps the rounded values: the lost digits
do not come back.

Breaking changes:
- confidence_score is DECIMAL(5,4): Python gets Decimal instead of float

Migration guide:
- Python: confidence scores are decimal.Decimal (float(score) where a float is
  needed)
- frontend: no change (JSON serialisation handles it)
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "5d2c6b1a0f9e"
down_revision = "4c1b5a0f9e8d"
branch_labels = None
depends_on = None

COMMENT = "OCR confidence score (0.0-1.0)"


def upgrade() -> None:
    op.alter_column(
        "documents",
        "confidence_score",
        type_=sa.Numeric(precision=5, scale=4),
        existing_type=sa.Float,
        existing_nullable=True,
        existing_comment=COMMENT,
        postgresql_using="confidence_score::numeric(5,4)",
    )


def downgrade() -> None:
    op.alter_column(
        "documents",
        "confidence_score",
        type_=sa.Float,
        existing_type=sa.Numeric(precision=5, scale=4),
        existing_nullable=True,
        existing_comment=COMMENT,
        postgresql_using="confidence_score::double precision",
    )
