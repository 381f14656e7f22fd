"""Tumbling event-time windows per key, shared by training and scoring so both cut the
stream the same way.

A key's window closes when an event of that key falls past its end, or when event time
overall has moved ``lateness`` beyond it (a quiet key must not hold its window forever).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from socpipe.core.event import Event
from socpipe.detectors.correlation import event_time
from socpipe.detectors.sweep import SweepSchedule

W = TypeVar("W")


class TumblingWindows(Generic[W]):
    def __init__(
        self,
        key_of: Callable[[Event], str | None],
        open_window: Callable[[str, float], W],
        add: Callable[[W, Event, float], None],
        seconds: float,
        lateness: float = 300.0,
    ) -> None:
        self.key_of, self.open_window, self.add = key_of, open_window, add
        self.seconds = seconds
        self.lateness = lateness
        self._open: dict[str, tuple[float, W]] = {}
        self._newest = float("-inf")
        self._sweeps = SweepSchedule()
        self.skipped = 0

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
            closed.append(current[1])
            current = None
        if current is None:
            current = self._open[key] = (start, self.open_window(key, start))
        self.add(current[1], event, moment)
        if self._sweeps.due(len(self._open)):
            closed.extend(self._sweep(self._newest - self.lateness))
        return closed

    def flush(self) -> list[W]:
        return self._sweep(float("inf"))

    def _sweep(self, watermark: float) -> list[W]:
        expired = [
            key for key, (start, _) in self._open.items() if start + self.seconds < watermark
        ]
        return [self._open.pop(key)[1] for key in expired]
