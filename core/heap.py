"""Garbage collection for long-running processes that hold a large, unchanging heap.

A daemon stage holds hundreds of thousands of long-lived objects from start-up (compiled rules,
the Kafka and Elasticsearch clients, imported modules) and then allocates in batches: a
consumer batch's decoded events, a bulk response's items. Those batch objects live until the
batch ends, survive the young collections and get promoted, which makes CPython's full
collections frequent, and each full collection walked the whole start-up heap again: in a
saturated pipeline that was about a quarter of the detect and index stages' CPU (py-spy,
``gc_collect_main``). Freezing moves what exists after start-up out of the collector's sight
(it is never freed anyway), and a larger young generation lets a batch's short-lived objects
die before they are promoted. Reference cycles are still collected, just less often.

The daemon's stages run in threads, and glibc keeps what a thread frees in that thread's
arena for its next allocations: after a burst (a window of incidents closing, a large bulk),
the pages stay with the process although nothing uses them. In a 75-minute soak one
``malloc_trim`` gave 33 MiB of 528 back; the daemon now hands free memory back every minute,
so its resident size follows what it holds.
"""

from __future__ import annotations

import ctypes
import gc
import os
from collections.abc import Callable
from typing import Final

#: Allocations between young collections (CPython's default is 700): a few batches' worth of
#: decoded events rather than a fraction of one.
YOUNG_THRESHOLD: Final = 50_000


#: How often a long-running process hands memory its threads freed back to the system.
RETURN_FREE_MEMORY_SECS: Final = 60.0


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None on another C library (musl, macOS)."""
    try:
        if not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"):
            return None
        trim: Callable[[int], int] = ctypes.CDLL("libc.so.6").malloc_trim
    except (AttributeError, OSError, ValueError):
        return None
    return trim


def return_free_memory() -> bool:
    """Give the pages every thread's arena holds free back to the system; False where the
    C library offers no way to (the memory is then reused by later allocations only)."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


def settle_after_startup() -> None:
    """Call once start-up is over (rules compiled, clients made), before the main loop."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
