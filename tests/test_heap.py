"""Long-running processes take their start-up heap out of the garbage collector's sight."""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path

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


def resident_mib() -> float:
    for row in Path("/proc/self/status").read_text().splitlines():
        if row.startswith("VmRSS:"):
            return int(row.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def test_memory_a_thread_freed_goes_back_to_the_system() -> None:
    """A thread's burst of allocations, freed but for a few long-lived ones spread through
    it, leaves its arena's pages with the process until they are handed back."""
    if not heap.return_free_memory():
        pytest.skip("not glibc: the C library keeps freed memory for later allocations")
    kept: list[bytes] = []

    def burst() -> None:
        transient = []
        for number in range(200_000):  # 1 KB each: malloc'd, in this thread's arena
            transient.append(b"x" * 1000 + str(number).encode())
            if number % 50 == 0:
                kept.append(b"y" * 1000 + str(number).encode())
        transient.clear()

    worker = threading.Thread(target=burst)
    worker.start()
    worker.join()
    before = resident_mib()
    assert heap.return_free_memory()
    assert resident_mib() < before - 100  # about 200 MB freed, 4 MB of it still used
    assert len(kept) == 4000
