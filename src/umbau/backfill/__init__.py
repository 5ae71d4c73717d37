"""Backfills: batched, keyset-paged, resumable, parallel data migrations that change
every row exactly once and never hold locks for longer than one short batch.

::

    from umbau.backfill import Backfill

    ocr_v2 = Backfill(
        name="ocr_v2",
        table="documents",
        set={"ocr_result": "jsonb_build_object('version', '1.0') || ocr_result"},
        where="NOT (ocr_result ? 'version')",
        verify="ocr_result ? 'version'",
    )

Run it with ``umbau backfill run myapp.backfills:ocr_v2`` or
:func:`run_backfill`, or from a revision with :func:`run_in_revision`.
"""

from __future__ import annotations

from umbau.backfill.api import Backfill, load_backfill
from umbau.backfill.control import (
    DryRunResult,
    backfill_status,
    cancel,
    dry_run,
    pause,
    resume,
)
from umbau.backfill.orchestrator import BackfillResult, Verification, run_backfill
from umbau.backfill.revision import run_in_revision
from umbau.backfill.state import BackfillState

__all__ = [
    "Backfill",
    "BackfillResult",
    "BackfillState",
    "DryRunResult",
    "Verification",
    "backfill_status",
    "cancel",
    "dry_run",
    "load_backfill",
    "pause",
    "resume",
    "run_backfill",
    "run_in_revision",
]
