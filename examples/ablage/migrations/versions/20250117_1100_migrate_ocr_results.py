"""migrate OCR results to the 1.0 format

Revision ID: b2c3d4e5f6a7
Revises: a1b2c3d4e5f6
Create Date: 2025-01-17 11:00:00.000000+00:00

Release 1.0.0 (data): every ``documents.ocr_result`` in the 0.9 format becomes
the 1.0 format, with the guide's mapping (``convert_ocr_format``)::

    0.9                          1.0
    content                  ->  text
    score                    ->  confidence
    engine                   ->  backend
    lang                     ->  metadata.language
    page_count               ->  metadata.pages
    duration                 ->  metadata.processing_time
    segments[] {text, bbox,  ->  blocks[] {text, bbox, confidence, type}
                conf, type}
                                 version = "1.0"

Missing keys get the guide's defaults ("", 0.0, "unknown", "de", 1, 0.0).
Unlike the guide's script (one SELECT, then one UPDATE per row) this is one
set-based UPDATE that PostgreSQL runs on its own; it only touches results
without a ``version`` key, so a rerun does nothing.

The downgrade turns 1.0 results back into the 0.9 format (the guide's
``revert_ocr_format``, and the blocks back into segments): a result that had all
0.9 keys comes back unchanged. Keys that are not part of the mapping are not
carried over.

Breaking changes:
- documents.ocr_result has the 1.0 format (see above); readers of the 0.9 keys
  find nothing

Migration guide:
- text = ocr_result["text"] (was "content"); confidence = ocr_result["confidence"]
  (was "score"); backend = ocr_result["backend"] (was "engine")
- language, pages and processing time are under ocr_result["metadata"]
- check ocr_result["version"] == "1.0" before reading
"""
from __future__ import annotations

from alembic import op

# revision identifiers, used by Alembic.
revision = "b2c3d4e5f6a7"
down_revision = "a1b2c3d4e5f6"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Migrate OCR results from the 0.9 format to the 1.0 format."""
    op.execute(
        """
        UPDATE documents
        SET ocr_result = jsonb_build_object(
            'version', '1.0',
            'text', coalesce(ocr_result -> 'content', '""'),
            'confidence', coalesce(ocr_result -> 'score', '0.0'),
            'backend', coalesce(ocr_result -> 'engine', '"unknown"'),
            'metadata', jsonb_build_object(
                'language', coalesce(ocr_result -> 'lang', '"de"'),
                'pages', coalesce(ocr_result -> 'page_count', '1'),
                'processing_time', coalesce(ocr_result -> 'duration', '0.0')
            ),
            'blocks', coalesce(
                (SELECT jsonb_agg(
                            jsonb_build_object(
                                'text', coalesce(segment -> 'text', '""'),
                                'bbox', coalesce(segment -> 'bbox', '[0, 0, 0, 0]'),
                                'confidence', coalesce(segment -> 'conf', '0.0'),
                                'type', coalesce(segment -> 'type', '"text"')
                            ) ORDER BY position)
                 FROM jsonb_array_elements(
                          CASE jsonb_typeof(ocr_result -> 'segments')
                              WHEN 'array' THEN ocr_result -> 'segments'
                              ELSE '[]'
                          END
                      ) WITH ORDINALITY AS segments (segment, position)),
                '[]'
            )
        )
        WHERE jsonb_typeof(ocr_result) = 'object'
          AND NOT ocr_result ? 'version'
        """
    )


def downgrade() -> None:
    """Revert OCR results from the 1.0 format to the 0.9 format."""
    op.execute(
        """
        UPDATE documents
        SET ocr_result = jsonb_build_object(
            'content', coalesce(ocr_result -> 'text', '""'),
            'score', coalesce(ocr_result -> 'confidence', '0.0'),
            'engine', coalesce(ocr_result -> 'backend', '"unknown"'),
            'lang', coalesce(ocr_result #> '{metadata,language}', '"de"'),
            'page_count', coalesce(ocr_result #> '{metadata,pages}', '1'),
            'duration', coalesce(ocr_result #> '{metadata,processing_time}', '0.0'),
            'segments', coalesce(
                (SELECT jsonb_agg(
                            jsonb_build_object(
                                'text', coalesce(block -> 'text', '""'),
                                'bbox', coalesce(block -> 'bbox', '[0, 0, 0, 0]'),
                                'conf', coalesce(block -> 'confidence', '0.0'),
                                'type', coalesce(block -> 'type', '"text"')
                            ) ORDER BY position)
                 FROM jsonb_array_elements(
                          CASE jsonb_typeof(ocr_result -> 'blocks')
                              WHEN 'array' THEN ocr_result -> 'blocks'
                              ELSE '[]'
                          END
                      ) WITH ORDINALITY AS blocks (block, position)),
                '[]'
            )
        )
        WHERE jsonb_typeof(ocr_result) = 'object'
          AND ocr_result ->> 'version' = '1.0'
        """
    )
