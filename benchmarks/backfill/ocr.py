"""Guide 003's OCR result reshape, as SQL (for the set-based UPDATE and umbau's SQL
backfill) and as Python (umbau's Python-transform backfill)."""

from __future__ import annotations

from typing import Any

SQL_RESHAPE = """jsonb_build_object(
    'version', '1.0',
    'text', coalesce(ocr_result->>'content', ''),
    'confidence', coalesce(ocr_result->'score', '0.0'),
    'backend', coalesce(ocr_result->>'engine', 'unknown'),
    'metadata', jsonb_build_object(
        'language', coalesce(ocr_result->>'lang', 'de'),
        'pages', coalesce(ocr_result->'page_count', '1'),
        'processing_time', coalesce(ocr_result->'duration', '0.0')),
    'blocks', coalesce((SELECT jsonb_agg(jsonb_build_object(
            'text', coalesce(s->>'text', ''),
            'bbox', coalesce(s->'bbox', '[0, 0, 0, 0]'),
            'confidence', coalesce(s->'conf', '0.0'),
            'type', coalesce(s->>'type', 'text')))
        FROM jsonb_array_elements(ocr_result->'segments') AS s), '[]'))"""

NEEDS_RESHAPE = "NOT (ocr_result ? 'version')"
RESHAPED = "ocr_result ? 'version'"


def convert_ocr_format(old: dict[str, Any]) -> dict[str, Any]:
    """The guide's convert_ocr_format (with the version key of its data script)."""
    return {
        "version": "1.0",
        "text": old.get("content", ""),
        "confidence": old.get("score", 0.0),
        "backend": old.get("engine", "unknown"),
        "metadata": {
            "language": old.get("lang", "de"),
            "pages": old.get("page_count", 1),
            "processing_time": old.get("duration", 0.0),
        },
        "blocks": [{"text": s.get("text", ""), "bbox": s.get("bbox", [0, 0, 0, 0]),
                    "confidence": s.get("conf", 0.0), "type": s.get("type", "text")}
                   for s in old.get("segments", [])],
    }


def reshape_batch(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"id": r["id"], "ocr_result": convert_ocr_format(r["ocr_result"])} for r in rows]
