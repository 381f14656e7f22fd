"""The interface the detector drives: anything that watches events and may raise alerts."""

from __future__ import annotations

from typing import Protocol

from collectors.event import Event
from detectors.alert import Alert


class AnomalyScorer(Protocol):
    def observe(self, event: Event) -> list[Alert]:
        """Take one event; alerts for any window it closed."""
        ...

    def flush(self) -> list[Alert]:
        """End of input: score what is still open."""
        ...
