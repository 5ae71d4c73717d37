"""Backfill benchmark (guide 003's OCR reshape): ``python -m benchmarks.backfill``."""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from benchmarks.backfill.run import main as run

    return run(argv)
