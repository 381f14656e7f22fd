"""Log lines about what senders do (a truncated frame, a refused connection, a time in the
future) at most once per subject and interval: a sender must not be able to flood the
collector's log, yet the operator must hear of it, with how often it happened."""

from __future__ import annotations

import time
from collections.abc import Callable

#: Subjects remembered at most (senders' addresses, files): beyond, the oldest are forgotten.
MAX_SUBJECTS = 10_000


class LogThrottle:
    def __init__(
        self, interval_secs: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval_secs = interval_secs
        self.clock = clock
        #: subject -> (when last logged, occurrences since)
        self._subjects: dict[str, tuple[float, int]] = {}

    def due(self, subject: str) -> int:
        """Occurrences to report now (this one and those held back since the last line for
        ``subject``), or 0 when this one is held back."""
        now = self.clock()
        last, held = self._subjects.get(subject, (None, 0))
        if last is not None and now - last < self.interval_secs:
            self._subjects[subject] = (last, held + 1)
            return 0
        if last is None and len(self._subjects) >= MAX_SUBJECTS:
            del self._subjects[next(iter(self._subjects))]
        self._subjects[subject] = (now, 0)
        return held + 1
