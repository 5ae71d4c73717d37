"""expand: add documents.extracted_text with a dual-write trigger

Revision ID: 1f8e2d7c6b5a
Revises: e5f6a7b8c9d0
Create Date: 2025-03-01 09:00:00.000000+00:00

Release 1.1.0, the rename ``ocr_text`` -> ``extracted_text`` done as
expand/contract, step 1 of 3 (schema). The guide's plain RENAME would break
every 1.0 process still running during a rolling deploy; instead:

1. expand (this revision): add ``extracted_text`` (nullable: catalog only, no
   rewrite) and a trigger that keeps both columns equal on every write, so 1.0
   code (writes ``ocr_text``) and 1.1 code (writes ``extracted_text``) work side
   by side;
2. copy (1.1.0, 2a9f3e8d7c6b): fill ``extracted_text`` for the existing rows;
3. contract (2.0.0, 3b0a4f9e8d7c): once no 1.x code runs, check and drop
   ``ocr_text`` and the trigger.

``ops.rename_column`` writes the column and the trigger: on INSERT it fills
whichever column was left empty; on UPDATE the column that changed wins. The
copy of the existing rows is left to the next revision (``backfill="defer"``),
which runs it with umbau's backfill engine; the contract refuses until that
backfill has finished and verified.

Breaking changes:
- none: old code keeps working

Migration guide:
- new code reads and writes documents.extracted_text; ocr_text is deprecated
- GET /api/v1/documents/{id}/ocr-text is deprecated (X-API-Deprecation header);
  use /api/v2/documents/{id}/extracted-text
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op  # noqa: F401 - Alembic's proxy, used through umbau.ops

from umbau import ops

# revision identifiers, used by Alembic.
revision = "1f8e2d7c6b5a"
down_revision = "e5f6a7b8c9d0"
branch_labels = None
depends_on = None


def upgrade() -> None:
    ops.rename_column("documents", "ocr_text", "extracted_text", type_=sa.Text(),
                      backfill="defer")


def downgrade() -> None:
    ops.revert_rename_column("documents", "ocr_text", "extracted_text")
