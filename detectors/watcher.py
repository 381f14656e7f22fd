"""What the detector drives besides rules: anything that watches events and may raise alerts
(anomaly models, the indicator matcher)."""

from __future__ import annotations

from typing import Protocol

from socpipe.core.event import Event
from socpipe.detectors.alert import Alert


class EventWatcher(Protocol):
    def observe(self, event: Event) -> list[Alert]:
        """Take one event; alerts for any window it closed."""
        ...

    def flush(self) -> list[Alert]:
        """End of input: score what is still open."""
        ...
