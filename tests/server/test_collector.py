"""The collector settings `lain-console serve` starts with (server/collector.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from server.collector import THRESHOLDS, settle_heap


@pytest.fixture
def collector() -> Iterator[None]:
    """Whatever a test does to the collector is undone afterwards."""
    thresholds = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("collector")
def test_settle_heap_freezes_what_start_up_built_and_collects_less_often() -> None:
    built = [{"start-up": n} for n in range(1000)]
    settle_heap()
    assert gc.get_freeze_count() >= len(built)
    assert gc.get_threshold() == THRESHOLDS
    assert THRESHOLDS[0] > 700  # the default young-generation threshold
