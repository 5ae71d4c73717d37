"""Migration tests: the checks of ``umbau test``, generated rows, and the pytest plugin.

Imports are lazy, so that the pytest plugin (``umbau.testing.plugin``) costs nothing in
test suites that do not use it.
"""

from __future__ import annotations

import importlib
from typing import Any

_PUBLIC = {
    "MigrationRunner": "umbau.testing.harness",
    "Failure": "umbau.testing.report",
    "RevisionTiming": "umbau.testing.report",
    "TestReport": "umbau.testing.report",
    "Irreversible": "umbau.testing.verdicts",
    "TestOptions": "umbau.testing.stairway",
    "run_checks": "umbau.testing.stairway",
    "test_on_throwaway": "umbau.testing.throwaway",
    "throwaway_database": "umbau.testing.throwaway",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'umbau.testing' has no attribute {name!r}")
