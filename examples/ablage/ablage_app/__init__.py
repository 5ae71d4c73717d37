"""Ablage, the document archive with OCR, as far as its database is concerned.

``RELEASES`` maps each release to the last revision it ships, oldest first.
"""
from __future__ import annotations

RELEASES: dict[str, str] = {
    "0.9.0": "f6e5d4c3b2a1",  # users (with role), documents, notifications, tags
    "1.0.0": "e5f6a7b8c9d0",  # confidence score, OCR format 1.0, roles, tag taxonomy
    "1.1.0": "2a9f3e8d7c6b",  # expand: extracted_text next to ocr_text, dual-write
    "2.0.0": "6e3d7c2b1a0f",  # contract: no ocr_text, no users.role; DECIMAL scores
}
