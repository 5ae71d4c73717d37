"""The OCR result format chain of Ablage, as umbau payload upgraders.

::

    "0"   (0.9.0)  {content, score, engine, lang, page_count, duration, segments[]}
    "1.0" (1.0.0)  {version, text, confidence, backend,
                    metadata {language, pages, processing_time}, blocks[]}
    "2.0" (2.0.0)  as 1.0, but metadata.processing_time (seconds, float) is
                   metadata.processing_ms (milliseconds, integer)

Release 1.0.0 converted every stored result with a revision
(``20250117_1100_migrate_ocr_results.py``); the step to 2.0 is a payload backfill
(``ablage_app.backfills:ocr_result_2_0``) while the application already reads 2.0
through :class:`umbau.payload.types.VersionedJSON`. Each upgrader has a SQL form, so the
backfill runs set-based; the tests check that SQL and Python agree. The downgraders
serve clients of the v1 API (see ``ablage_app.api``).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from umbau import payload

KIND = "ocr_result"

payload.define(KIND, first="0")

_DEFAULTS_1_0 = {"content": "", "score": 0.0, "engine": "unknown", "lang": "de",
                 "page_count": 1, "duration": 0.0}

_SQL_0_TO_1_0 = """jsonb_build_object(
    'version', '1.0',
    'text', coalesce({doc} -> 'content', '""'),
    'confidence', coalesce({doc} -> 'score', '0.0'),
    'backend', coalesce({doc} -> 'engine', '"unknown"'),
    'metadata', jsonb_build_object(
        'language', coalesce({doc} -> 'lang', '"de"'),
        'pages', coalesce({doc} -> 'page_count', '1'),
        'processing_time', coalesce({doc} -> 'duration', '0.0')),
    'blocks', coalesce(
        (SELECT jsonb_agg(jsonb_build_object(
                    'text', coalesce(segment -> 'text', '""'),
                    'bbox', coalesce(segment -> 'bbox', '[0, 0, 0, 0]'),
                    'confidence', coalesce(segment -> 'conf', '0.0'),
                    'type', coalesce(segment -> 'type', '"text"')) ORDER BY position)
         FROM jsonb_array_elements(CASE jsonb_typeof({doc} -> 'segments')
                                   WHEN 'array' THEN {doc} -> 'segments' ELSE '[]' END)
              WITH ORDINALITY AS segments (segment, position)),
        '[]'))"""


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


@payload.upgrader(KIND, from_="0", to="1.0", sql=_SQL_0_TO_1_0)
def ocr_0_to_1_0(doc: dict[str, Any]) -> dict[str, Any]:
    """The 0.9 worker's result in the 1.0 format (the mapping of the 1.0.0 revision)."""
    get = {key: doc.get(key, default) for key, default in _DEFAULTS_1_0.items()}
    return {
        "text": get["content"],
        "confidence": get["score"],
        "backend": get["engine"],
        "metadata": {"language": get["lang"], "pages": get["page_count"],
                     "processing_time": get["duration"]},
        "blocks": [{"text": s.get("text", ""), "bbox": s.get("bbox", [0, 0, 0, 0]),
                    "confidence": s.get("conf", 0.0), "type": s.get("type", "text")}
                   for s in map(_object, _list(doc.get("segments")))],
    }


@payload.downgrader(KIND, from_="1.0", to="0")
def ocr_1_0_to_0(doc: dict[str, Any]) -> dict[str, Any]:
    """A 1.0 result in the 0.9 format (for v1 API clients)."""
    meta = _object(doc.get("metadata"))
    return {
        "content": doc.get("text", ""),
        "score": doc.get("confidence", 0.0),
        "engine": doc.get("backend", "unknown"),
        "lang": meta.get("language", "de"),
        "page_count": meta.get("pages", 1),
        "duration": meta.get("processing_time", 0.0),
        "segments": [{"text": b.get("text", ""), "bbox": b.get("bbox", [0, 0, 0, 0]),
                      "conf": b.get("confidence", 0.0), "type": b.get("type", "text")}
                     for b in map(_object, _list(doc.get("blocks")))],
    }


_SQL_1_0_TO_2_0 = """jsonb_set({doc}, '{metadata}',
    (CASE jsonb_typeof({doc} -> 'metadata') WHEN 'object' THEN {doc} -> 'metadata'
     ELSE '{}' END) - 'processing_time'
    || jsonb_build_object('processing_ms', round(coalesce(
        CASE jsonb_typeof({doc} #> '{metadata,processing_time}') WHEN 'number'
        THEN ({doc} #>> '{metadata,processing_time}')::numeric END, 0) * 1000)))
    || '{"version": "2.0"}'"""


def _milliseconds(seconds: Any) -> int:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return 0
    return int(Decimal(repr(seconds)).scaleb(3).to_integral_value(rounding=ROUND_HALF_UP))


@payload.upgrader(KIND, from_="1.0", to="2.0", sql=_SQL_1_0_TO_2_0)
def ocr_1_0_to_2_0(doc: dict[str, Any]) -> dict[str, Any]:
    """Processing time in whole milliseconds (``metadata.processing_ms``)."""
    meta = dict(_object(doc.get("metadata")))
    meta["processing_ms"] = _milliseconds(meta.pop("processing_time", 0))
    return {**doc, "metadata": meta}


@payload.downgrader(KIND, from_="2.0", to="1.0")
def ocr_2_0_to_1_0(doc: dict[str, Any]) -> dict[str, Any]:
    """Processing time back in seconds (``metadata.processing_time``)."""
    meta = dict(_object(doc.get("metadata")))
    ms = meta.pop("processing_ms", 0)
    meta["processing_time"] = float(Decimal(ms) / 1000) if isinstance(ms, int) else 0.0
    return {**doc, "metadata": meta}
