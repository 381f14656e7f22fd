"""Long-running processes take their start-up heap out of the garbage collector's sight."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from socpipe.core import heap


@pytest.fixture
def restored_collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


@pytest.mark.usefixtures("restored_collector")
def test_the_start_up_heap_is_frozen_and_young_collections_are_rarer() -> None:
    long_lived = [{"rule": number} for number in range(1000)]
    heap.settle_after_startup()
    # What existed at start-up is no longer walked by any collection...
    assert gc.get_freeze_count() >= len(long_lived)
    walked = {id(item) for item in gc.get_objects()}
    assert not any(id(item) in walked for item in long_lived)
    assert gc.get_threshold()[0] == heap.YOUNG_THRESHOLD


@pytest.mark.usefixtures("restored_collector")
def test_cycles_made_after_start_up_are_still_collected() -> None:
    heap.settle_after_startup()
    first, second = _Node(), _Node()
    first.other, second.other = second, first
    watch = weakref.ref(first)
    del first, second
    gc.collect()
    assert watch() is None
