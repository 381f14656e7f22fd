"""When to walk all keyed state looking for expired entries.

Walking every group on a fixed count of events costs in proportion to the number of groups:
at the correlation engine's cap of 100,000 groups, a walk every 1,024 matches would visit about
a hundred groups per match. Waiting for at least as many events as there are groups keeps the
walk at under one visit per event, whatever the state size. A wall-clock interval bounds how
late a closed window is judged when events are few.
"""

from __future__ import annotations

import time

DEFAULT_MINIMUM_EVENTS = 1024
DEFAULT_INTERVAL_SECONDS = 5.0


class SweepSchedule:
    def __init__(
        self,
        minimum_events: int = DEFAULT_MINIMUM_EVENTS,
        interval_seconds: float = DEFAULT_INTERVAL_SECONDS,
    ) -> None:
        self.minimum_events = minimum_events
        self.interval_seconds = interval_seconds
        self._since = 0
        self._at = time.monotonic()

    def due(self, held: int) -> bool:
        """Count one event; whether state holding ``held`` keys should be walked now."""
        self._since += 1
        enough_events = self._since >= max(self.minimum_events, held)
        # The clock is read every 64th event only: this runs once per match.
        if not enough_events and (
            self._since % 64 or time.monotonic() - self._at < self.interval_seconds
        ):
            return False
        self._since = 0
        self._at = time.monotonic()
        return True
