"""Timestamp parsing for the formats agencies send.

RFC 3164 and many application logs carry neither year nor timezone; both are inferred from a
reference time and a configured zone, because guessing UTC silently shifts every event of an
agency that logs local time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

_MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}


def month_number(name: str) -> int | None:
    return _MONTHS.get(name[:3].lower())


#: How far ahead of the reference a year-less time may be (clock skew between hosts).
FUTURE_TOLERANCE = timedelta(days=2)


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
    """Parse the Common Log Format time ``10/Oct/2000:13:55:36 -0700``."""
    try:
        return datetime.strptime(text, "%d/%b/%Y:%H:%M:%S %z")
    except ValueError:
        return None


def parse_epoch(value: str) -> datetime | None:
    """Parse epoch seconds with optional fraction (auditd ``msg=audit(1700000000.123:42)``)."""
    try:
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=float(value))
    except (ValueError, OverflowError):
        return None
