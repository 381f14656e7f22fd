"""The parse context of a long-running collector: its reference time is the time of receipt.

Year-less timestamps (RFC 3164 syslog, sshd, cron) are placed relative to the context's
reference time, and a line with no time at all is stamped with it. ``socpipe scan`` uses the
file's modification time; a collector that runs for weeks must use the moment each line
arrives. A context fixed at start-up would, two days later, put every year-less line a year
back (it would look like clock skew into the future) and date every time-less line at the
start-up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from socpipe.collectors.parsers import ParseContext

Clock = Callable[[], datetime]


def wall_clock() -> datetime:
    return datetime.now(UTC)


class LiveContext:
    """Hands out the context for "now", one per millisecond.

    Event timestamps carry milliseconds, so a context per millisecond is as exact as the
    output, and the lines that arrive within one share it (and the parsers' per-context
    timestamp cache) instead of each paying for a new one.
    """

    def __init__(self, base: ParseContext, clock: Clock = wall_clock) -> None:
        self.base = base
        self.clock = clock
        self._current = base

    def now(self) -> ParseContext:
        moment = self.clock()
        moment = moment.replace(microsecond=moment.microsecond - moment.microsecond % 1000)
        if moment != self._current.reference_time:
            self._current = replace(self.base, reference_time=moment)
        return self._current
