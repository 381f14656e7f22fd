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
"""

from __future__ import annotations

import gc
from typing import Final

#: Allocations between young collections (CPython's default is 700): a few batches' worth of
#: decoded events rather than a fraction of one.
YOUNG_THRESHOLD: Final = 50_000


def settle_after_startup() -> None:
    """Call once start-up is over (rules compiled, clients made), before the main loop."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
