"""One bad field or byte never costs the whole record: what parses is kept, what does not is
named in ``socpipe.invalid_fields`` and the event tagged ``socpipe_invalid_field``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from socpipe.collectors.files import FileEventReader
from socpipe.collectors.parsers import ParseContext, parse_detected
from socpipe.core.event import to_int

CONTEXT = ParseContext(agency_id="so-tttt", reference_time=datetime(2026, 3, 10, tzinfo=UTC))
#: Superscript two: str.isdigit() says yes, int() raises.
SUPERSCRIPT = "\u00b2"
MANY_DIGITS = "1" * 5000  # beyond int()'s 4300 digits


@pytest.mark.parametrize(
    ("line", "module", "kept", "invalid"),
    [
        (
            f"CEF:0|Fortinet|FortiGate|7.2|13|denied|5|src=198.51.100.4 spt={SUPERSCRIPT} act=deny",
            "cef",
            {
                "source.ip": "198.51.100.4",
                "event.action": "deny",
                "cef.extensions.spt": SUPERSCRIPT,
            },
            ["source.port"],
        ),
        (
            f"CEF:0|Fortinet|FortiGate|7.2|13|denied|5|src=198.51.100.4 rt={MANY_DIGITS}",
            "cef",
            {"source.ip": "198.51.100.4"},
            ["cef.extensions.rt"],
        ),
        (
            f"type=SYSCALL msg=audit(1700000000.1:42): pid={SUPERSCRIPT} exe=/usr/bin/id uid=0",
            "auditd",
            {"process.executable": "/usr/bin/id", "user.id": "0"},
            ["process.pid"],
        ),
        (
            f"<38>Mar  3 10:00:00 web01 sshd[{MANY_DIGITS}]: Accepted password for root"
            " from 203.0.113.5 port 22 ssh2",
            "system",
            {"user.name": "root", "source.ip": "203.0.113.5", "source.port": 22},
            ["process.pid"],
        ),
        (
            f"[Sun Dec 04 04:47:44 2005] [error] [pid {MANY_DIGITS}] [client 10.0.0.5] denied",
            "apache",
            {"source.ip": "10.0.0.5", "log.level": "error"},
            ["process.pid"],
        ),
        (
            "<38>1 2026-13-45T99:00:00Z web01 sshd 77 - - Failed password for root"
            " from 203.0.113.5 port 1 ssh2",
            "system",
            {"user.name": "root", "socpipe.original_timestamp": "2026-13-45T99:00:00Z"},
            ["@timestamp"],
        ),
    ],
)
def test_a_bad_field_is_named_and_the_rest_kept(
    line: str, module: str, kept: dict, invalid: list[str]
) -> None:
    event, parser = parse_detected(line, CONTEXT)
    assert parser.name != "generic" and event["event.module"] == module
    for field, value in kept.items():
        assert event[field] == value, field
    assert event["socpipe.invalid_fields"] == invalid
    assert "socpipe_invalid_field" in event["tags"]


def test_a_value_that_is_not_a_number_where_one_is_optional_is_left_out_quietly() -> None:
    # RFC 5424's PROCID may be a name; Windows writes some process ids in hexadecimal.
    event, _ = parse_detected(f"<38>1 2026-03-03T10:00:00Z web01 app {SUPERSCRIPT} - - hi", CONTEXT)
    assert event["event.module"] == "system" and "process.pid" not in event
    winlogbeat = (
        '{"@timestamp": "2026-03-03T10:00:00Z", "winlog": {"channel": "Security", "event_id": 4688,'
        f' "event_data": {{"NewProcessId": "{SUPERSCRIPT}", "NewProcessName": "C:\\\\x.exe"}}}}}}'
    )
    event, _ = parse_detected(winlogbeat, CONTEXT)
    assert event["event.code"] == "4688" and "process.pid" not in event
    assert event["process.executable"] == "C:\\x.exe"


def test_numbers_are_read_only_from_a_few_ascii_digits() -> None:
    assert [to_int(text) for text in ("42", "0", "9" * 18)] == [42, 0, int("9" * 18)]
    assert [to_int(text) for text in ("", SUPERSCRIPT, "\u0662", "9" * 19, "-1", " 1")] == [
        None
    ] * 6


def test_an_invalid_utf8_byte_in_a_json_line_is_kept_as_an_escape_not_fatal(
    tmp_path: Path,
) -> None:
    log = tmp_path / "app.json"
    log.write_bytes(
        b'{"@timestamp": "2026-03-03T10:00:00Z", "event": {"module": "app", "action": "login"},'
        b' "user": {"name": "r\xffoot"}, "path": "C:\\\\x41"}\n'
    )
    reader = FileEventReader(CONTEXT)
    [event] = reader.read([log])
    assert (event["event.module"], event["event.action"]) == ("app", "login")
    assert event["user.name"] == "r\\xffoot"
    assert event["path"] == "C:\\x41"  # an escaped backslash before an x is left alone
    assert event["tags"] == ["socpipe_invalid_utf8"]
    assert reader.stats.unparsed == 0


def test_json_nested_beyond_the_depth_bound_keeps_the_rest(tmp_path: Path) -> None:
    deep = '{"a":' * 40 + "1" + "}" * 40
    event, _ = parse_detected('{"user": {"name": "bob"}, "deep": ' + deep + "}", CONTEXT)
    assert event["user.name"] == "bob"
    assert event["socpipe.invalid_fields"] == ["deep" + ".a" * 15]
