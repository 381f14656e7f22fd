"""Tumbling event-time windows per key, shared by training and scoring so both cut the
stream the same way.

A key's window closes when an event of that key falls past its end, or when event time
overall has moved ``lateness`` beyond it (a quiet key must not hold its window forever).

Memory is bounded by bytes: each window says how much it grew with each event (``add``
returns an estimate), and beyond ``max_bytes`` the least recently active windows are shed,
unscored: an attacker who floods the model with new keys costs it some windows, not the
process its memory. Shedding is counted and logged once when it starts and once when the
windows are back under their cap.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

from socpipe.core import metrics
from socpipe.core.event import Event
from socpipe.detectors.correlation import event_time
from socpipe.detectors.sweep import SweepSchedule

log = logging.getLogger(__name__)

W = TypeVar("W")
#: A window's bookkeeping here: its key, its start and its place in the ordered dict.
WINDOW_OVERHEAD_BYTES = 200
#: Shedding ends, and is logged as ended, once the windows hold less than this share of the cap.
SHEDDING_ENDS_BELOW = 0.9


class TumblingWindows(Generic[W]):
    def __init__(
        self,
        key_of: Callable[[Event], str | None],
        open_window: Callable[[str, float], tuple[W, int]],
        add: Callable[[W, Event, float], int],
        seconds: float,
        lateness: float = 300.0,
        max_bytes: int | None = None,
        name: str = "windows",
    ) -> None:
        """``open_window`` makes a window and says its size in bytes; ``add`` adds an event
        and says by how many bytes the window grew. ``max_bytes`` None: no cap (training)."""
        self.key_of, self.open_window, self.add = key_of, open_window, add
        self.seconds = seconds
        self.lateness = lateness
        self.max_bytes = max_bytes
        self.name = name
        #: Open windows by key, least recently active first: (start, window, bytes).
        self._open: OrderedDict[str, tuple[float, W, int]] = OrderedDict()
        self._newest = float("-inf")
        self._sweeps = SweepSchedule()
        self.skipped = 0
        self.state_bytes = 0
        self.shed = 0
        self._shed_since: int | None = None
        capped = max_bytes is not None
        self._bytes_gauge = metrics.ANOMALY_BYTES.labels(name) if capped else None
        self._shed_counter = metrics.ANOMALY_SHED.labels(name) if capped else None

    def observe(self, event: Event) -> list[W]:
        """Add an event; the windows this closed."""
        key = self.key_of(event)
        moment = event_time(event)
        if key is None or moment is None:
            self.skipped += 1
            return []
        closed: list[W] = []
        self._newest = max(self._newest, moment)
        start = moment - moment % self.seconds
        current = self._open.get(key)
        if current is not None and start > current[0]:
            closed.append(self._close(key))
            current = None
        if current is None:
            window, size = self.open_window(key, start)
            size += WINDOW_OVERHEAD_BYTES + len(key)
            current = self._open[key] = (start, window, size)
            self.state_bytes += size
        else:
            self._open.move_to_end(key)
        grown = self.add(current[1], event, moment)
        if grown:
            self._open[key] = (current[0], current[1], current[2] + grown)
            self.state_bytes += grown
        if self.max_bytes is not None and self.state_bytes > self.max_bytes:
            self._shed()
        if self._sweeps.due(len(self._open)):
            closed.extend(self._sweep(self._newest - self.lateness))
        return closed

    def flush(self) -> list[W]:
        return self._sweep(float("inf"))

    def _close(self, key: str) -> W:
        _, window, size = self._open.pop(key)
        self.state_bytes -= size
        return window

    def _shed(self) -> None:
        """Drop the least recently active windows, unscored, until under the cap."""
        assert self.max_bytes is not None
        if self._shed_since is None:
            self._shed_since = self.shed
            log.warning(
                "anomaly model %s: its open windows reached the cap of %d bytes (%d windows):"
                " shedding the least recently active ones unscored. Raise"
                " stages.anomaly_max_bytes or shorten the model's window.",
                self.name,
                self.max_bytes,
                len(self._open),
            )
        while self.state_bytes > self.max_bytes and self._open:
            self._close(next(iter(self._open)))
            self.shed += 1
            if self._shed_counter is not None:
                self._shed_counter.inc()

    def _sweep(self, watermark: float) -> list[W]:
        expired = [
            key for key, (start, _, _) in self._open.items() if start + self.seconds < watermark
        ]
        closed = [self._close(key) for key in expired]
        if self._bytes_gauge is not None:
            self._bytes_gauge.set(self.state_bytes)
        if (
            self._shed_since is not None
            and self.max_bytes is not None
            and self.state_bytes < self.max_bytes * SHEDDING_ENDS_BELOW
        ):
            log.warning(
                "anomaly model %s: open windows back under their cap after shedding %d",
                self.name,
                self.shed - self._shed_since,
            )
            self._shed_since = None
        return closed
