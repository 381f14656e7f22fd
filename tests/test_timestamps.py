"""Timestamp formatting and the cached year-less time conversion against their references."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from socpipe.collectors.parsers import ParseContext, parse_detected
from socpipe.collectors.timestamps import (
    _BSD_MINUTES,
    FUTURE_TOLERANCE,
    bsd_to_iso,
    clf_to_iso,
    parse_bsd_timestamp,
)
from socpipe.core.event import format_timestamp

ZONES = [
    UTC,
    ZoneInfo("Asia/Ho_Chi_Minh"),
    ZoneInfo("America/New_York"),  # daylight saving time
    ZoneInfo("Australia/Lord_Howe"),  # half-hour daylight saving shift
    timezone(timedelta(hours=-3, minutes=-30)),
]


@settings(max_examples=500, deadline=None)
@given(st.datetimes(min_value=datetime(1000, 1, 1), timezones=st.sampled_from(ZONES)))
def test_format_timestamp_is_iso_8601_utc_to_the_millisecond(moment: datetime) -> None:
    utc = moment.astimezone(UTC)
    milliseconds = utc.microsecond // 1000
    # ISO 8601 years have four digits: strftime's %Y writes the year 999 as "999".
    expected = f"{utc.year:04d}" + utc.strftime(f"-%m-%dT%H:%M:%S.{milliseconds:03d}Z")
    assert format_timestamp(moment) == expected


@settings(max_examples=500, deadline=None)
@given(
    local=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2000, 12, 31)),
    reference=st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
    ),
    zone=st.sampled_from(ZONES),
)
def test_cached_conversion_equals_the_direct_one(
    local: datetime, reference: datetime, zone: timezone
) -> None:
    text = local.strftime("%b %d %H:%M:%S")
    direct = parse_bsd_timestamp(text, reference, zone)
    converted = bsd_to_iso(text, reference, zone)
    assert converted == (format_timestamp(direct) if direct else None)


def test_the_minute_cache_does_not_leak_between_references() -> None:
    line_time = "Dec 31 23:59:30"
    in_june = datetime(2026, 6, 1, tzinfo=UTC)
    new_year = datetime(2027, 1, 2, tzinfo=UTC)
    assert bsd_to_iso(line_time, in_june, UTC) == "2025-12-31T23:59:30.000Z"
    assert bsd_to_iso(line_time, new_year, UTC) == "2026-12-31T23:59:30.000Z"
    assert bsd_to_iso(line_time, datetime(2026, 6, 1, tzinfo=UTC), UTC) == (
        "2025-12-31T23:59:30.000Z"
    )
    assert bsd_to_iso(line_time, new_year, ZoneInfo("Asia/Ho_Chi_Minh")) == (
        "2026-12-31T16:59:30.000Z"
    )


def _local_hours_around_changes(zone: tzinfo, year: int) -> list[datetime]:
    """Local wall-clock hours next to each change of the zone's UTC offset in ``year``."""
    hours = []
    moment = datetime(year, 1, 1, tzinfo=UTC)
    offset = moment.astimezone(zone).utcoffset()
    while moment.year == year:
        moment += timedelta(hours=1)
        local = moment.astimezone(zone)
        if local.utcoffset() != offset:
            offset = local.utcoffset()
            start = local.replace(minute=0, tzinfo=None)
            hours += [start + timedelta(hours=step) for step in (-2, -1, 0, 1)]
    return hours


def _every_minute(hours: list[datetime]) -> list[str]:
    return [
        (hour + timedelta(minutes=minute, seconds=7)).strftime("%b %d %H:%M:%S")
        for hour in hours
        for minute in range(60)
    ]


class MidHourShift(tzinfo):
    """A zone moving from +01:00 to +02:00 at 02:30 local time on 29 March 2026: both offsets
    are whole hours, but the hour of the change is not uniform (no zone in the samples does
    this today; historic and future rules may)."""

    SHIFT_UTC = datetime(2026, 3, 29, 1, 30)

    def utcoffset(self, moment: datetime | None) -> timedelta:
        wall = moment.replace(tzinfo=None) if moment else self.SHIFT_UTC
        return timedelta(hours=1 if wall < self.SHIFT_UTC + timedelta(hours=1) else 2)

    def dst(self, moment: datetime | None) -> timedelta:
        return self.utcoffset(moment) - timedelta(hours=1)

    def fromutc(self, moment: datetime) -> datetime:
        utc = moment.replace(tzinfo=None)
        offset = timedelta(hours=1 if utc < self.SHIFT_UTC else 2)
        return (utc + offset).replace(tzinfo=self)

    def tzname(self, moment: datetime | None) -> str:
        return "MidHourShift"


@pytest.mark.parametrize("zone", [*ZONES, MidHourShift()], ids=str)
def test_cached_conversion_is_exact_in_every_minute_around_offset_changes(zone: tzinfo) -> None:
    """Random examples rarely land in the hour of a daylight saving shift: try them all."""
    reference = datetime(2026, 12, 31, tzinfo=UTC)
    texts = _every_minute(_local_hours_around_changes(zone, 2026))
    for text in texts:
        direct = parse_bsd_timestamp(text, reference, zone)
        assert bsd_to_iso(text, reference, zone) == (format_timestamp(direct) if direct else None)


@pytest.mark.parametrize("zone", ZONES, ids=str)
def test_cached_conversion_is_exact_where_the_year_placement_flips(zone: tzinfo) -> None:
    """Times up to FUTURE_TOLERANCE after the reference are this year, later ones last
    year: the flip falls inside an hour here (the reference is at half past)."""
    reference = datetime(2026, 12, 29, 0, 30, tzinfo=UTC)
    flip = (reference + FUTURE_TOLERANCE).astimezone(zone).replace(minute=0, tzinfo=None)
    texts = _every_minute([flip + timedelta(hours=step) for step in (-1, 0, 1)])
    years = set()
    for text in texts:
        direct = parse_bsd_timestamp(text, reference, zone)
        assert direct is not None
        years.add(direct.year)
        assert bsd_to_iso(text, reference, zone) == format_timestamp(direct)
    assert years == {2025, 2026}


ARABIC_INDIC_01 = "\u0660\u0661"  # "01" in Arabic-Indic digits: str.isdigit() says yes


def test_seconds_in_other_scripts_digits_are_not_copied_into_timestamps() -> None:
    """The cached conversions append the line's seconds as text; only ASCII digits may go."""
    reference = datetime(2026, 3, 10, tzinfo=UTC)
    assert bsd_to_iso("Mar  3 10:00:01", reference, UTC) == "2026-03-03T10:00:01.000Z"
    assert bsd_to_iso(f"Mar  3 10:00:{ARABIC_INDIC_01}", reference, UTC) is None
    assert bsd_to_iso("Mar  3 10:00:01.\u0665", reference, UTC) is None
    assert clf_to_iso("03/Mar/2026:10:00:01 +0000") == "2026-03-03T10:00:01.000Z"
    assert clf_to_iso(f"03/Mar/2026:10:00:{ARABIC_INDIC_01} +0000") is None


def test_a_syslog_line_with_such_seconds_is_kept_with_a_readable_timestamp() -> None:
    line = f"Mar  3 10:00:{ARABIC_INDIC_01} web01 sshd[1]: Failed password for root from 1.2.3.4"
    context = ParseContext(agency_id="so-tttt", reference_time=datetime(2026, 3, 10, tzinfo=UTC))
    event, _parser = parse_detected(line, context)
    assert event["event.original"] == line
    assert event["@timestamp"].isascii()


@pytest.mark.parametrize("text", ["Mar  3 10:75:01", "Mar  3 24:00:01", "Mar  3 10:00:60"])
def test_times_off_the_clock_are_refused(text: str) -> None:
    reference = datetime(2026, 3, 10, tzinfo=UTC)
    assert bsd_to_iso(text, reference, UTC) is None
    # Again once the cache has answered for this reference (later minutes go by the hour).
    assert bsd_to_iso("Mar  3 10:00:01", reference, UTC) == "2026-03-03T10:00:01.000Z"
    assert bsd_to_iso(text, reference, UTC) is None


def test_a_fresh_context_converts_its_first_minute_without_setting_up_an_hour() -> None:
    """A collector takes a new context every millisecond and often sees one line in it: an
    hour costs more to set up than the minute, so it is set up from the second minute on."""
    reference = datetime(2026, 3, 10, tzinfo=UTC)
    bsd_to_iso("Mar  3 10:00:01", reference, UTC)
    assert _BSD_MINUTES.state[3] == {}
    bsd_to_iso("Mar  3 10:01:01", reference, UTC)
    assert list(_BSD_MINUTES.state[3]) == ["Mar  3 10"]
