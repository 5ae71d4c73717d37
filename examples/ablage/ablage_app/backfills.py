"""Ablage's backfills.

``ocr_result_2_0`` upgrades every stored OCR result to the 2.0 format (see
``ablage_app.ocr_formats``), batched and resumable::

    umbau backfill run ablage_app.backfills:ocr_result_2_0

Rows already at 2.0 are not touched; the application reads 2.0 the whole time through
``VersionedJSON``, so the backfill can run while it serves requests.
"""
from __future__ import annotations

from ablage_app import ocr_formats
from umbau.backfill import Backfill

ocr_result_2_0 = Backfill.from_payload("documents", "ocr_result", ocr_formats.KIND)
