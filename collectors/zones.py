"""The zone of times written without an offset, when the operator gave none.

BSD syslog, Apache error logs and many JSON producers write local time without saying which
zone. ``--timezone`` names it; without it socpipe reads such times as UTC, which on a host
(or from a source) in another zone files every event hours off, into the future of every
correlation window. So the collectors warn at start on a host that is not in UTC, and the
collectors and the scan warn once per source (file, sender) that turns out to need a zone:
``UnsetZone`` is UTC, and counts every time a parser consults it.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta, tzinfo

log = logging.getLogger(__name__)

_ZERO = timedelta(0)


class UnsetZone(tzinfo):
    """UTC, standing in for a zone nobody configured; ``consulted`` counts the times read
    with it (only a time without an offset is)."""

    def __init__(self) -> None:
        self.consulted = 0

    def utcoffset(self, dt: datetime | None) -> timedelta:
        self.consulted += 1
        return _ZERO

    def dst(self, dt: datetime | None) -> timedelta:
        return _ZERO

    def tzname(self, dt: datetime | None) -> str:
        return "UTC"

    def __repr__(self) -> str:
        return "UnsetZone()"


def host_zone_offset() -> str | None:
    """This host's zone as ``UTC+07:00`` when it is not UTC (also a zone that is at UTC only
    part of the year), else None."""
    if time.timezone == 0 and not time.daylight:
        return None
    offset = -time.timezone
    sign = "+" if offset >= 0 else "-"
    hours, minutes = divmod(abs(offset) // 60, 60)
    return f"{time.tzname[0]} (UTC{sign}{hours:02d}:{minutes:02d})"


def warn_if_host_not_utc(command: str) -> None:
    """The warning a collector gives at start when no zone was given on a non-UTC host."""
    host = host_zone_offset()
    if host is not None:
        log.warning(
            "%s: no --timezone given and this host's zone is %s: times without an offset"
            " (BSD syslog, Apache error logs) are read as UTC; give the zone the sources"
            " write in, e.g. --timezone Asia/Ho_Chi_Minh",
            command,
            host,
        )


class ZoneWatch:
    """Warns once per source whose times were read with an ``UnsetZone``."""

    def __init__(self, zone: tzinfo, max_sources: int = 10_000) -> None:
        self.zone = zone if isinstance(zone, UnsetZone) else None
        self.max_sources = max_sources
        self.warned: set[str] = set()
        self._seen = self.zone.consulted if self.zone is not None else 0

    def check(self, source: str) -> bool:
        """Call after reading from ``source``: whether it needed the zone for the first
        time (then a warning is given)."""
        if self.zone is None or self.zone.consulted == self._seen:
            return False
        self._seen = self.zone.consulted
        if source in self.warned or len(self.warned) >= self.max_sources:
            return False
        self.warned.add(source)
        log.warning(
            "source=%s writes times without an offset and no --timezone was given:"
            " they are read as UTC (give --timezone if it writes local time)",
            source,
        )
        return True
