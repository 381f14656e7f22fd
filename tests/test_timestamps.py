"""Timestamp formatting and the cached year-less time conversion against their references."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.event import format_timestamp
from collectors.timestamps import bsd_to_iso, parse_bsd_timestamp

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
    assert format_timestamp(moment) == utc.strftime(f"%Y-%m-%dT%H:%M:%S.{milliseconds:03d}Z")


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
