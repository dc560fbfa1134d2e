"""`smsrelay serve` and `smsrelay worker` keep start-up objects out of the collector and collect
young objects less often (cli._tune_garbage_collector)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from smsrelay.bootstrap import bootstrap
from smsrelay.cli import YOUNG_GC_THRESHOLD, _start_worker, _tune_garbage_collector
from smsrelay.config import load_settings


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
    gc.unfreeze()
    before = gc.get_threshold()
    assert gc.get_freeze_count() == 0
    _tune_garbage_collector()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (YOUNG_GC_THRESHOLD, *before[1:])


@pytest.mark.usefixtures("restored_gc")
async def test_a_worker_tunes_the_collector_once_started(tmp_path: Path) -> None:
    gc.unfreeze()
    container = bootstrap(load_settings(database_url=f"sqlite:///{tmp_path / 'w.db'}"))
    try:
        dispatcher = await _start_worker(container)
        assert dispatcher is container.dispatcher
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold()[0] == YOUNG_GC_THRESHOLD
    finally:
        await container.stop()
