"""The parse context of a long-running collector: its reference time is the time of receipt.

Year-less timestamps (RFC 3164 syslog, sshd, cron) are placed relative to the context's
reference time, and a line with no time at all is stamped with it. ``socpipe scan`` uses the
file's modification time; a collector that runs for weeks must use the moment each line
arrives. A context fixed at start-up would, two days later, put every year-less line a year
back (it would look like clock skew into the future) and date every time-less line at the
start-up.

The receipt is also what a content time is checked against: a time outside the window
around it (``collectors.max_future_secs``, ``max_past_secs``) is replaced by the receipt
time, tagged, counted and logged (``timestamps.TimeWindow``), and a source whose times need
the zone nobody configured is warned about once (``zones.ZoneWatch``).

Audit process starts wait for their working directory (parsers/audit_join.py): a collector
passes each event it made through ``release`` and publishes what comes out, in order, asks
``expire`` now and then so a host gone quiet does not keep a start back, and ``flush`` when
it stops. Waits are measured on a monotonic clock, which a wall clock set back cannot stretch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from socpipe.collectors.lines import decode_line
from socpipe.collectors.parsers import ParseContext, parse_detected
from socpipe.collectors.throttle import LogThrottle
from socpipe.collectors.timestamps import FUTURE, IN_WINDOW, ORIGINAL_TIMESTAMP, TimeWindow
from socpipe.collectors.zones import ZoneWatch
from socpipe.core import metrics
from socpipe.core.event import Event, add_tag

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

#: The window of content times a collector accepts around the receipt, unless configured.
DEFAULT_WINDOW = TimeWindow(timedelta(seconds=900), timedelta(days=30))


def wall_clock() -> datetime:
    return datetime.now(UTC)


class LiveContext:
    """Hands out the context for "now", one per millisecond, and turns received text into
    a checked event.

    Event timestamps carry milliseconds, so a context per millisecond is as exact as the
    output, and the lines that arrive within one share it (and the parsers' per-context
    timestamp cache) instead of each paying for a new one.
    """

    def __init__(
        self,
        base: ParseContext,
        clock: Clock = wall_clock,
        collector: str = "file",
        window: TimeWindow | None = None,
        ticks: Callable[[], float] = time.monotonic,
    ) -> None:
        # A collector is one stream of audit records, whoever else was given ``base``.
        self.base = base.new_stream()
        self.clock = clock
        self.ticks = ticks
        self.join = self.base.audit.join
        self.collector = collector
        self._current = self.base
        self.window = window if window is not None else DEFAULT_WINDOW
        self.zones = ZoneWatch(base.zone)
        self._throttle = LogThrottle()
        self._clamped = [
            None,
            metrics.TIMESTAMPS_CLAMPED.labels(collector, "future"),
            metrics.TIMESTAMPS_CLAMPED.labels(collector, "past"),
        ]

    def now(self) -> ParseContext:
        moment = self.clock()
        moment = moment.replace(microsecond=moment.microsecond - moment.microsecond % 1000)
        if moment != self._current.reference_time:
            self._current = replace(self.base, reference_time=moment)
        return self._current

    def event(self, raw: bytes, source: str, context: ParseContext | None = None) -> Event | None:
        """The event for one received line or message (None if it is blank), parsed with
        the context of its arrival (``context``: lines that arrived together, one read of a
        file, share the one ``now()`` gave), tagged when its bytes were not UTF-8, its time
        checked."""
        text, valid = decode_line(raw)
        if not text.strip():
            return None
        if context is None:
            context = self.now()
        event, _parser = parse_detected(text, context)
        if not valid:
            add_tag(event, "socpipe_invalid_utf8")
        self.zones.check(source)
        found = self.window.clamp(event, context.reference_time)
        if found != IN_WINDOW:
            self._report_clamped(event, found, source)
        return event

    def release(self, event: Event) -> list[Event]:
        """The events free to go, in order, once ``event`` (with every field its collector
        sets) joins those held for their working directory: usually ``event`` alone."""
        if self.join.idle():
            return [event]
        return self.join.admit(event, self.ticks())

    def expire(self) -> list[Event]:
        """The held events free to go because their call has been silent too long."""
        return self.join.expire(self.ticks())

    def flush(self) -> list[Event]:
        """Every held event, in order: the collector stops (or its stream ends)."""
        return self.join.flush()

    def truncated(self, event: Event, source: str, where: str, cap: int) -> None:
        """Tag and count an event whose line or message was cut at ``cap`` bytes; logged at
        most once a minute per source (a sender could otherwise flood the log)."""
        add_tag(event, "socpipe_truncated")
        metrics.TRUNCATED.labels(self.collector).inc()
        if count := self._throttle.due(f"truncated {source}"):
            log.warning(
                "line truncated source=%s %s cap=%d (head kept, tagged socpipe_truncated) lines=%d",
                source,
                where,
                cap,
                count,
            )

    def _report_clamped(self, event: Event, found: int, source: str) -> None:
        counter = self._clamped[found]
        assert counter is not None
        counter.inc()
        direction = "future" if found == FUTURE else "past"
        if count := self._throttle.due(f"{direction} {source}"):
            log.warning(
                "source=%s: content time %s is in the %s of its receipt; set to the receipt"
                " time %s (kept in %s, tagged) events=%d",
                source,
                event[ORIGINAL_TIMESTAMP],
                direction,
                event["@timestamp"],
                ORIGINAL_TIMESTAMP,
                count,
            )
