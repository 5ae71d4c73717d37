"""contract: drop documents.ocr_text and the dual-write trigger

Revision ID: 3b0a4f9e8d7c
Revises: 5d2c6b1a0f9e
Create Date: 2025-06-01 09:00:00.000000+00:00

Release 2.0.0, after the deploy (``phase = "post"``), expand/contract step 3 of
3. No 1.x process runs any more, so nothing writes ``ocr_text``.
``ops.contract_rename_column`` refuses (exit code 30, nothing changed) unless
the backfill of 2a9f3e8d7c6b finished and verified and every document's
``extracted_text`` equals its ``ocr_text`` (the guide's check, stricter: say the
trigger was disabled for a while). Then the trigger, its function and the
column go.

The downgrade is the expand phase again: the column comes back, filled from
``extracted_text`` by a backfill, with the trigger that keeps both equal.

Breaking changes:
- documents.ocr_text is gone
- GET /api/v1/documents/{id}/ocr-text is removed (the whole v1 API is)
- environment: OCR_ENGINE -> OCR_BACKEND, MAX_FILE_SIZE -> MAX_UPLOAD_SIZE_MB,
  REDIS_URL -> REDIS_DSN; LEGACY_MODE and OLD_API_ENABLED are removed

Migration guide:
- read documents.extracted_text; call GET /api/v2/documents/{id}/extracted-text
- Python SDK: document.extracted_text (was document.ocr_text)
- rename the environment variables above in .env
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op  # noqa: F401 - Alembic's proxy, used through umbau.ops

from umbau import ops

# revision identifiers, used by Alembic.
revision = "3b0a4f9e8d7c"
down_revision = "5d2c6b1a0f9e"
branch_labels = None
depends_on = None
# after the deploy, once no 1.x process runs
phase = "post"


def upgrade() -> None:
    ops.contract_rename_column("documents", "ocr_text", "extracted_text")


def downgrade() -> None:
    ops.revert_contract_rename_column("documents", "ocr_text", "extracted_text",
                                      type_=sa.Text())
