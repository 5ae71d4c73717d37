"""copy ocr_text to extracted_text

Revision ID: 2a9f3e8d7c6b
Revises: 1f8e2d7c6b5a
Create Date: 2025-03-01 09:05:00.000000+00:00

Release 1.1.0, expand/contract step 2 of 3 (data): the guide's copy of the rows
written before the trigger existed, as umbau's backfill ``ops.rename_backfill``
(batched on the key, each batch its own short transaction, resumable, exactly
once per row, verified: ``extracted_text IS NOT DISTINCT FROM ocr_text``). Rows
written since then are already equal; a rerun finds nothing left to do.

The downgrade leaves ``extracted_text`` alone (the previous revision's
downgrade drops it) and makes sure ``ocr_text`` holds every text that only
``extracted_text`` has, so nothing 1.1 code wrote is lost with the column.

Breaking changes:
- none

Migration guide:
- nothing to do
"""
from __future__ import annotations

from alembic import op

from umbau import ops
from umbau.backfill import run_in_revision

# revision identifiers, used by Alembic.
revision = "2a9f3e8d7c6b"
down_revision = "1f8e2d7c6b5a"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_in_revision(op, ops.rename_backfill("documents", "ocr_text", "extracted_text"))


def downgrade() -> None:
    op.execute(
        """
        UPDATE documents
        SET ocr_text = extracted_text
        WHERE extracted_text IS NOT NULL AND ocr_text IS DISTINCT FROM extracted_text
        """
    )
