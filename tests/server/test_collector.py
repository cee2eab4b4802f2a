"""The collector settings `lain-console serve` starts with (server/collector.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from server.collector import THRESHOLDS, tune_collector


@pytest.fixture
def collector() -> Iterator[None]:
    """Whatever a test does to the collector is undone afterwards."""
    thresholds = gc.get_threshold()
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("collector")
def test_tune_collector_collects_the_young_generation_less_often() -> None:
    tune_collector()
    assert gc.get_threshold() == THRESHOLDS
    assert THRESHOLDS[0] > 700  # the default young-generation threshold
