"""Jittered exponential backoff, shared by the runner's lock-timeout retries and backfills."""

from __future__ import annotations

import random

from umbau.settings import Settings


def backoff_delay(attempt: int, settings: Settings, rng: random.Random | None = None) -> float:
    """Seconds to wait before retry ``attempt`` (1-based).

    Full jitter: uniform in [base/2, min(max, base * 2**(attempt-1))], with ``base`` and
    ``max`` from ``settings.backoff_base`` / ``settings.backoff_max`` (seconds).
    """
    base = settings.backoff_base or 0.0
    cap = settings.backoff_max or base
    ceiling = min(cap, base * 2 ** max(0, attempt - 1))
    return (rng or random).uniform(min(base / 2, ceiling), ceiling)
