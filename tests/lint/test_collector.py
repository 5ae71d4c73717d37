"""The lint pauses Python's garbage collector and leaves it as it found it."""

from __future__ import annotations

import gc

from umbau.commands.lint import _collector_paused


def test_collector_is_paused_inside_and_enabled_after() -> None:
    assert gc.isenabled()
    with _collector_paused():
        assert not gc.isenabled()
        garbage = [[] for _ in range(50_000)]
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0  # the lint's objects are back in the collector's care
    del garbage


def test_a_disabled_collector_stays_disabled() -> None:
    gc.disable()
    try:
        with _collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_objects_the_caller_froze_stay_frozen() -> None:
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with _collector_paused():
            [[] for _ in range(1_000)]
        assert gc.isenabled()
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
