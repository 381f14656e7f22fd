"""Syslog headers (RFC 3164 and 5424) and the timestamps they carry."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from socpipe.collectors.parsers import ParseContext, get_parser, parse_detected
from socpipe.collectors.parsers.syslog import _BSD, _PRI, split_structured_data
from socpipe.collectors.timestamps import parse_bsd_timestamp, parse_iso_timestamp

CONTEXT = ParseContext(agency_id="so-tttt", reference_time=datetime(2026, 3, 10, tzinfo=UTC))


def test_rfc3164_header_fields() -> None:
    line = "<38>Mar  3 10:00:01 web01 sshd[2211]: Connection closed by 10.0.0.1 port 22"
    event, parser = parse_detected(line, CONTEXT)
    assert parser.name == "syslog"
    assert event["@timestamp"] == "2026-03-03T10:00:01.000Z"
    assert event["host.name"] == "web01"
    assert event["process.name"] == "sshd"
    assert event["process.pid"] == 2211
    assert event["log.syslog.facility.code"] == 4
    assert event["log.syslog.severity.code"] == 6
    assert event["message"] == "Connection closed by 10.0.0.1 port 22"
    assert event["event.original"] == line
    assert event["organization.id"] == "so-tttt"


def test_rfc3164_local_time_is_converted_to_utc() -> None:
    context = ParseContext(
        "a", None, ZoneInfo("Asia/Ho_Chi_Minh"), datetime(2026, 3, 10, tzinfo=UTC)
    )
    event = get_parser("syslog").parse("Mar  3 10:00:01 web01 cron[1]: hello", context)
    assert event is not None
    assert event["@timestamp"] == "2026-03-03T03:00:01.000Z"


def test_rfc3164_program_with_pam_suffix() -> None:
    line = "Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=218.188.2.4 "
    event = get_parser("syslog").parse(line, CONTEXT)
    assert event is not None
    assert event["process.name"] == "sshd"
    assert event["source.ip"] == "218.188.2.4"
    assert event["event.outcome"] == "failure"


def test_year_inference_never_puts_logs_in_the_future() -> None:
    new_year = datetime(2026, 1, 2, tzinfo=UTC)
    assert parse_bsd_timestamp("Dec 31 23:59:59", new_year, UTC) == datetime(
        2025, 12, 31, 23, 59, 59, tzinfo=UTC
    )
    assert parse_bsd_timestamp("Jan  3 00:00:01", new_year, UTC) == datetime(
        2026, 1, 3, 0, 0, 1, tzinfo=UTC
    )
    leap = parse_bsd_timestamp("Feb 29 10:00:00", datetime(2025, 3, 1, tzinfo=UTC), UTC)
    assert leap == datetime(2024, 2, 29, 10, tzinfo=UTC)
    assert parse_bsd_timestamp("Foo 29 10:00:00", new_year, UTC) is None


def test_iso_timestamps_with_seven_fraction_digits_and_no_offset() -> None:
    assert parse_iso_timestamp("2026-03-03T03:30:00.1234567Z", UTC) == datetime(
        2026, 3, 3, 3, 30, 0, 123456, tzinfo=UTC
    )
    hcm = ZoneInfo("Asia/Ho_Chi_Minh")
    assert parse_iso_timestamp("2026-03-03T10:30:00", hcm) == datetime(
        2026, 3, 3, 10, 30, tzinfo=hcm
    )
    assert parse_iso_timestamp("not a time", UTC) is None


def test_rfc5424_with_structured_data() -> None:
    line = (
        "<165>1 2026-03-03T10:15:00.003+07:00 mail01 postfix 4242 ID47 "
        '[exampleSDID@32473 iut="3" eventSource="Application" note="a \\"quoted\\] value"]'
        '[meta sequenceId="1"] \ufeffmessage body'
    )
    event, parser = parse_detected(line, CONTEXT)
    assert parser.name == "syslog5424"
    assert event["@timestamp"] == "2026-03-03T03:15:00.003Z"
    assert event["host.name"] == "mail01"
    assert event["log.syslog.appname"] == "postfix"
    assert event["process.pid"] == 4242
    assert event["log.syslog.msgid"] == "ID47"
    assert event["log.syslog.structured_data.exampleSDID@32473.eventSource"] == "Application"
    assert event["log.syslog.structured_data.exampleSDID@32473.note"] == 'a "quoted] value'
    assert event["log.syslog.structured_data.meta.sequenceId"] == "1"
    assert event["message"] == "message body"


def test_rfc5424_nil_values() -> None:
    event = get_parser("syslog5424").parse("<14>1 - - - - - - just text", CONTEXT)
    assert event is not None
    assert event["message"] == "just text"
    assert "host.name" not in event
    assert event["@timestamp"] == "2026-03-10T00:00:00.000Z"


def test_structured_data_unterminated_is_rejected() -> None:
    assert split_structured_data('[id a="1" msg') is None


def test_cef_inside_syslog_is_parsed_as_cef() -> None:
    line = "<134>Mar  3 10:20:00 fw-hq01 CEF:0|Fortinet|FortiGate|7.2|13|traffic denied|5|src=198.51.100.44 dpt=3389 act=deny"
    event, _ = parse_detected(line, CONTEXT)
    assert event["event.module"] == "cef"
    assert event["host.name"] == "fw-hq01"
    assert event["destination.port"] == 3389
    assert event["event.action"] == "deny"


#: The BSD header as first written (a lazy program name): the reference for the faster one.
LAZY_BSD_HEADER = re.compile(
    _PRI + r"(?P<ts>[A-Z][a-z]{2} +\d{1,2} \d{2}:\d{2}:\d{2}(?:\.\d+)?) "
    r"(?:(?P<host>[^\s:\[]+) )?"
    r"(?:(?!CEF:)(?P<prog>[^\s:\[]+?)(?:\((?P<sub>[^)]*)\))?(?:\[(?P<pid>\d+)\])?: ?)?"
    r"(?P<msg>.*)\Z",
    re.DOTALL,
)


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet="ab((()):[]] 1\t\nCEF", max_size=24))
@example("(x): m")  # a program that is just "("
@example("a(b(c)[1]: m")  # a suffix holding a "("
@example("a(b)(c): m")  # the program ends at its second "("
@example("a(b c)d: m")  # the suffix holds a space, then the program must run on
@example("p(x)y[1]: m")  # a suffix that cannot end the program
@example("host CEF:0|x")
def test_header_splits_as_the_lazy_definition_did(rest: str) -> None:
    # Beyond the first, a program's "(" are tried as its suffix's start 8 times at most.
    assume(rest.count("(") <= 9)
    for line in (f"Mar  3 10:00:01 {rest}", f"<13>Mar  3 10:00:01 web01 {rest}"):
        expected = LAZY_BSD_HEADER.match(line)
        assert expected is not None
        assert _BSD.match(line).groups() == expected.groups()  # type: ignore[union-attr]


def test_a_program_name_is_tried_at_nine_parentheses_at_most() -> None:
    # Every "(" fails as the start of a suffix (")x" is not followed by the end of the
    # header), so the program runs on to its ":" through all of them, or through none.
    nine = "a" + "(b" * 8 + ")x: m"
    match = _BSD.match(f"Mar  3 10:00:01 web01 {nine}")
    assert match is not None and (match["prog"], match["msg"]) == (nine[:-3], "m")
    ten = "a" + "(b" * 9 + ")x: m"
    match = _BSD.match(f"Mar  3 10:00:01 web01 {ten}")
    assert match is not None and (match["prog"], match["msg"]) == (None, ten)
