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

The trigger: on INSERT it fills whichever column was left empty; on UPDATE the
column that changed wins (when both change, both are kept as written).

Breaking changes:
- none: old code keeps working

Migration guide:
- new code reads and writes documents.extracted_text; ocr_text is deprecated
- GET /api/v1/documents/{id}/ocr-text is deprecated (X-API-Deprecation header);
  use /api/v2/documents/{id}/extracted-text
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "1f8e2d7c6b5a"
down_revision = "e5f6a7b8c9d0"
branch_labels = None
depends_on = None

SYNC_FUNCTION = """
CREATE FUNCTION documents_sync_extracted_text() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.extracted_text IS NULL THEN
            NEW.extracted_text := NEW.ocr_text;
        ELSIF NEW.ocr_text IS NULL THEN
            NEW.ocr_text := NEW.extracted_text;
        END IF;
    ELSIF NEW.ocr_text IS DISTINCT FROM OLD.ocr_text
          AND NEW.extracted_text IS NOT DISTINCT FROM OLD.extracted_text THEN
        NEW.extracted_text := NEW.ocr_text;  -- written by 1.0 code
    ELSIF NEW.extracted_text IS DISTINCT FROM OLD.extracted_text
          AND NEW.ocr_text IS NOT DISTINCT FROM OLD.ocr_text THEN
        NEW.ocr_text := NEW.extracted_text;  -- written by 1.1 code
    END IF;
    RETURN NEW;
END
$$
"""

SYNC_TRIGGER = """
CREATE TRIGGER trg_documents_sync_extracted_text
BEFORE INSERT OR UPDATE OF ocr_text, extracted_text ON documents
FOR EACH ROW EXECUTE FUNCTION documents_sync_extracted_text()
"""


def upgrade() -> None:
    op.add_column("documents", sa.Column("extracted_text", sa.Text, nullable=True))
    op.execute(SYNC_FUNCTION)
    op.execute(SYNC_TRIGGER)


def downgrade() -> None:
    op.execute("DROP TRIGGER trg_documents_sync_extracted_text ON documents")
    op.execute("DROP FUNCTION documents_sync_extracted_text()")
    op.drop_column("documents", "extracted_text")
