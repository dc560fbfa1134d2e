"""`smsrelay serve` keeps start-up objects out of the collector and collects young objects less
often (cli._tune_garbage_collector)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from smsrelay.cli import YOUNG_GC_THRESHOLD, _tune_garbage_collector


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_gc")
def test_start_up_objects_are_frozen_and_young_passes_are_rarer() -> None:
    before = gc.get_threshold()
    _tune_garbage_collector()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (YOUNG_GC_THRESHOLD, *before[1:])
