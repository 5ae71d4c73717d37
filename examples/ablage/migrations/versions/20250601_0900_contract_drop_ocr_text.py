"""contract: drop documents.ocr_text and the dual-write trigger

Revision ID: 3b0a4f9e8d7c
Revises: 2a9f3e8d7c6b
Create Date: 2025-06-01 09:00:00.000000+00:00

Release 2.0.0, expand/contract step 3 of 3. No 1.x process runs any more, so
nothing writes ``ocr_text``. First the guide's check, stricter: every document
whose ``ocr_text`` is set must have the same ``extracted_text``. If any does
not (say the trigger was disabled for a while), the upgrade refuses with the
number of such documents and changes nothing. Then the trigger, its function
and the column go.

The downgrade is the expand phase again: the column comes back, filled from
``extracted_text``, with the trigger that keeps both equal.

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
from alembic import op

# revision identifiers, used by Alembic.
revision = "3b0a4f9e8d7c"
down_revision = "2a9f3e8d7c6b"
branch_labels = None
depends_on = None

# The same function and trigger as the expand revision 1f8e2d7c6b5a (copied, not
# imported: a revision must not change when a later one is edited).
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
    # Verify that all data was copied; refuse (changing nothing) if not.
    op.execute(
        """
        DO $$
        DECLARE
            missing bigint;
        BEGIN
            SELECT count(*) INTO missing
            FROM documents
            WHERE ocr_text IS NOT NULL AND extracted_text IS DISTINCT FROM ocr_text;
            IF missing > 0 THEN
                RAISE EXCEPTION USING MESSAGE =
                    'refusing to drop documents.ocr_text: ' || missing || ' documents have'
                    || ' an ocr_text that extracted_text does not hold; copy them (UPDATE'
                    || ' documents SET extracted_text = ocr_text WHERE extracted_text IS'
                    || ' DISTINCT FROM ocr_text AND ocr_text IS NOT NULL) after checking'
                    || ' which text is current, then run the upgrade again';
            END IF;
        END
        $$
        """
    )
    op.execute("DROP TRIGGER trg_documents_sync_extracted_text ON documents")
    op.execute("DROP FUNCTION documents_sync_extracted_text()")
    # umbau: ignore[drop-column] the contract step: no code has read ocr_text since 1.1.0
    op.drop_column("documents", "ocr_text")


def downgrade() -> None:
    op.add_column("documents", sa.Column("ocr_text", sa.Text, nullable=True))
    op.execute(SYNC_FUNCTION)
    op.execute(SYNC_TRIGGER)
    op.execute(
        """
        UPDATE documents
        SET ocr_text = extracted_text
        WHERE extracted_text IS NOT NULL
        """
    )
