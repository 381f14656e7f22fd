"""Timestamp formatting and the cached year-less time conversion against their references."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.event import format_timestamp
from collectors.parsers import ParseContext, parse_detected
from collectors.timestamps import bsd_to_iso, clf_to_iso, parse_bsd_timestamp

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
