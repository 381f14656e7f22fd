"""Timestamp parsing for the formats agencies send.

RFC 3164 and many application logs carry neither year nor timezone; both are inferred from a
reference time and a configured zone, because guessing UTC silently shifts every event of an
agency that logs local time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from typing import Final

from socpipe.core.event import Event, add_tag, format_timestamp

_MONTHS: Final = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}


def month_number(name: str) -> int | None:
    return _MONTHS.get(name[:3].lower())


#: How far ahead of the reference a year-less time may be (clock skew between hosts).
FUTURE_TOLERANCE: Final = timedelta(days=2)


def place_in_year(moment: datetime, reference: datetime) -> datetime:
    """Put a year-less time in the reference's year, or the year before if that is the future.

    A log written before the reference time cannot be from after it: "Dec 31" read on
    2 January was written last year, while "Jan 3" read on 2 January is clock skew.
    """
    for year in range(reference.year, reference.year - 8, -1):
        try:
            placed = moment.replace(year=year)
        except ValueError:  # 29 February outside a leap year: look further back
            continue
        if placed - reference <= FUTURE_TOLERANCE:
            return placed
    raise ValueError(f"cannot place {moment:%b %d} before {reference:%Y-%m-%d}")


def parse_bsd_timestamp(text: str, reference: datetime, zone: tzinfo) -> datetime | None:
    """Parse ``Mmm dd HH:MM:SS`` (RFC 3164, sshd, cron), optionally with fractional seconds."""
    parts = text.split()
    if len(parts) != 3:
        return None
    month = month_number(parts[0])
    if month is None or not parts[1].isdigit():
        return None
    try:
        clock, _, fraction = parts[2].partition(".")
        hour, minute, second = (int(piece) for piece in clock.split(":"))
        micros = int((fraction + "000000")[:6]) if fraction.isdigit() else 0
        # 2000 is a leap year, so "Feb 29" parses before the real year is chosen.
        moment = datetime(2000, month, int(parts[1]), hour, minute, second, micros, tzinfo=zone)
        return place_in_year(moment, reference)
    except ValueError:
        return None


def parse_iso_timestamp(text: str, zone: tzinfo) -> datetime | None:
    """Parse ISO 8601 / RFC 3339; a value without offset is in the configured zone."""
    candidate = text.strip()
    if candidate.endswith(("Z", "z")):
        candidate = candidate[:-1] + "+00:00"
    # Python 3.11 accepts up to 6 fractional digits; Windows and Sysmon write 7 (100 ns ticks).
    head, dot, rest = candidate.partition(".")
    if dot:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        rest = rest[:6] + rest[digits:] if digits > 6 else rest
        candidate = head + "." + rest
    try:
        moment = datetime.fromisoformat(candidate)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


def parse_clf_timestamp(text: str) -> datetime | None:
    """Parse the Common Log Format time ``10/Oct/2000:13:55:36 -0700``.

    Sliced by hand: ``strptime`` costs more than the rest of a web log line's parsing.
    """
    month = month_number(text[3:6])
    if len(text) != 26 or month is None or text[20] != " " or text[21] not in "+-":
        return None
    try:
        offset = timedelta(hours=int(text[22:24]), minutes=int(text[24:26]))
        zone = timezone(-offset if text[21] == "-" else offset)
        return datetime(
            int(text[7:11]),
            month,
            int(text[0:2]),
            int(text[12:14]),
            int(text[15:17]),
            int(text[18:20]),
            tzinfo=zone,
        )
    except ValueError:
        return None


def clf_to_iso(text: str) -> str | None:
    """The event timestamp for a CLF time.

    Every real zone offset is a whole number of minutes, so the UTC text up to the minute
    depends only on the local text up to the minute: that prefix is cached and the seconds
    appended, which keeps the cache useful on logs where no two lines share a second.
    """
    if len(text) != 26:
        return None
    prefix = _clf_minute(text[:17] + ":00" + text[20:])
    seconds = text[18:20]
    return prefix + seconds + ".000Z" if prefix and _ascii_digits(seconds) else None


@lru_cache(maxsize=4096)
def _clf_minute(text: str) -> str | None:
    moment = parse_clf_timestamp(text)
    return format_timestamp(moment)[:17] if moment else None


def _ascii_digits(text: str) -> bool:
    """Digits that may be copied into a timestamp: ``isdigit`` alone also takes other
    scripts' digits (and superscripts), which Elasticsearch cannot read as a date."""
    return text.isascii() and text.isdigit()


def bsd_to_iso(text: str, reference: datetime, zone: tzinfo) -> str | None:
    """The event timestamp for a BSD syslog time, cached per minute like ``clf_to_iso``."""
    minute, colon, rest = text.rpartition(":")
    seconds, _, fraction = rest.partition(".")
    if not colon or len(seconds) != 2 or not _ascii_digits(seconds) or seconds > "59":
        return None
    if fraction and not _ascii_digits(fraction):
        return None
    prefix = _BSD_MINUTES.prefix(minute, reference, zone)
    if prefix is None:  # a minute the cache cannot answer for: convert this time directly
        moment = parse_bsd_timestamp(text, reference, zone)
        return format_timestamp(moment) if moment else None
    return f"{prefix}{seconds}.{(fraction + '000')[:3]}Z"


class _MinuteCache:
    """UTC minute prefixes of year-less times, for the reference and zone last asked about.

    The answer depends on the reference (which year) and the zone, but an ``lru_cache`` keyed
    on them hashed an aware datetime per line, which consults the zone and cost more than
    the rest of the timestamp. Contexts are long-lived (one per file in a scan, one per
    millisecond in a collector), so the cache is for one (reference, zone) pair at a time,
    checked by identity, and starts over when they change.

    Behind the minutes sits a cache of hours: a quiet log (a line every ten seconds) starts
    a new minute every few lines, and converting one costs about ten lines' worth of cache
    hits. Where a whole local hour has one whole-hour UTC offset and one year (nearly every
    hour of nearly every zone), its minutes are the same in UTC and the prefix is text.
    """

    def __init__(self, limit: int = 4096) -> None:
        self.limit = limit
        # One tuple, read once per call: collector threads with different contexts must
        # never mix one context's reference with another's prefixes.
        self.state: tuple[datetime | None, tzinfo | None, dict[str, str], dict[str, str]] = (
            None,
            None,
            {},
            {},
        )

    def prefix(self, minute: str, reference: datetime, zone: tzinfo) -> str | None:
        """``YYYY-MM-DDTHH:MM:`` in UTC; None for a minute with no one prefix (not a valid
        time, or the minute in which the year placement flips)."""
        state = self.state
        if state[0] is not reference or state[1] is not zone:
            state = self.state = (reference, zone, {}, {})
        prefixes = state[2]
        cached = prefixes.get(minute)
        if cached is not None:
            return cached
        # A state that has answered nothing yet may be a collector's context of one
        # millisecond, which sees one minute: setting up an hour would cost it more.
        prefix = self._from_hour(minute, reference, zone, state[3]) if prefixes else None
        if prefix is None:
            start = parse_bsd_timestamp(minute + ":00", reference, zone)
            if start is None or _year_flips_within(start, reference, _MINUTE):
                return None
            prefix = format_timestamp(start)[:17]
        if len(prefixes) >= self.limit:
            prefixes.clear()
        prefixes[minute] = prefix
        return prefix

    def _from_hour(
        self, minute: str, reference: datetime, zone: tzinfo, hours: dict[str, str]
    ) -> str | None:
        """The prefix by text from the minute's hour, or None where that is not exact."""
        hour, colon, minutes = minute.rpartition(":")
        if not colon or len(minutes) != 2 or not _ascii_digits(minutes) or minutes > "59":
            return None
        hour_prefix = hours.get(hour)
        if hour_prefix is None:
            hour_prefix = _uniform_hour_prefix(hour, reference, zone)
            if len(hours) >= self.limit:
                hours.clear()
            hours[hour] = hour_prefix
        return hour_prefix + minutes + ":" if hour_prefix else None


_MINUTE: Final = timedelta(minutes=1)
_HOUR: Final = timedelta(hours=1)


def _year_flips_within(start: datetime, reference: datetime, span: timedelta) -> bool:
    """Whether ``place_in_year`` puts part of ``[start, start + span)`` in one year and part
    in the year before: times up to FUTURE_TOLERANCE after the reference are this year's,
    later ones last year's. (A span placed last year lies a year before that instant.)"""
    return reference + FUTURE_TOLERANCE - start < span


def _uniform_hour_prefix(hour: str, reference: datetime, zone: tzinfo) -> str:
    """``YYYY-MM-DDTHH:`` in UTC for a local hour whose minutes map one to one onto a UTC
    hour's; "" when they do not: an offset with minutes (India, +05:30), an offset change
    within the hour (a daylight saving shift), or the year placement changing within it."""
    first = parse_bsd_timestamp(hour + ":00:00", reference, zone)
    if first is None or _year_flips_within(first, reference, _HOUR):
        return ""
    # The whole hour is in first's year, so its last minute is first's with minute=59.
    offset = first.utcoffset()
    if offset is None or offset % _HOUR or offset != first.replace(minute=59).utcoffset():
        return ""
    return format_timestamp(first)[:14]


_BSD_MINUTES: Final = _MinuteCache()


def parse_epoch(value: str) -> datetime | None:
    """Parse epoch seconds with optional fraction (auditd ``msg=audit(1700000000.123:42)``)."""
    try:
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=float(value))
    except (ValueError, OverflowError):
        return None


#: What ``TimeWindow.clamp`` found.
IN_WINDOW: Final = 0
FUTURE: Final = 1
PAST: Final = 2
#: The tags of events whose content time was replaced, by what ``clamp`` found.
CLAMP_TAGS: Final = ("", "socpipe_future_timestamp", "socpipe_past_timestamp")
#: Where a replaced content time is kept.
ORIGINAL_TIMESTAMP: Final = "socpipe.original_timestamp"


class TimeWindow:
    """The sane range of content times around the time a record was received (a collector)
    or its file last written (a scan).

    Times come from the content, which attackers write: a year-9999 time would sit in the
    future of every correlation window (which drops it) and create an index of its own. An
    event outside the window gets the reference time as ``@timestamp``; its content time is
    kept in ``socpipe.original_timestamp`` and the event is tagged, so nothing is hidden.
    """

    def __init__(self, max_future: timedelta | None, max_past: timedelta | None) -> None:
        self.max_future = max_future
        self.max_past = max_past
        # Limits as timestamp text, for the last reference asked about: every @timestamp
        # has the one shape ``YYYY-MM-DDTHH:MM:SS.mmmZ``, so text order is time order.
        self._reference: datetime | None = None
        self._latest = ""
        self._earliest = ""
        self._stamp = ""

    def clamp(self, event: Event, reference: datetime) -> int:
        """Bring ``event``'s time into the window around ``reference``; what was found."""
        if reference is not self._reference:
            self._reference = reference
            self._stamp = format_timestamp(reference)
            self._latest = format_timestamp(reference + self.max_future) if self.max_future else ""
            self._earliest = format_timestamp(reference - self.max_past) if self.max_past else ""
        stamp = event["@timestamp"]
        if self._latest and stamp > self._latest:
            found = FUTURE
        elif self._earliest and stamp < self._earliest:
            found = PAST
        else:
            return IN_WINDOW
        event[ORIGINAL_TIMESTAMP] = stamp
        event["@timestamp"] = self._stamp
        add_tag(event, CLAMP_TAGS[found])
        return found
