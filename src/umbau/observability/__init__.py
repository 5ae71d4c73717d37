"""Observability: Prometheus metrics and JSON log lines, both fed from the one event
stream every long command emits (:class:`umbau.events.Event`).

This package reads events only; it never talks to PostgreSQL. Its names resolve lazily:
``prometheus_client`` is imported when metrics are asked for (``metrics_registry()``,
``Metrics``, a ``--metrics-*`` option), so ``umbau --help`` and ``umbau status`` do not pay
for it. docs/observability.md lists every metric, its labels and the event it comes from.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "Metrics": "umbau.observability.metrics",
    "metrics_registry": "umbau.observability.metrics",
    "default_metrics": "umbau.observability.metrics",
    "with_metrics": "umbau.observability.metrics",
    "tee": "umbau.observability.logs",
    "JsonLog": "umbau.observability.logs",
    "Exporter": "umbau.observability.exposition",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'umbau.observability' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
