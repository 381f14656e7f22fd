"""Property-based tests: no input, however broken, crashes a parser or the file reader."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from socpipe.collectors.lines import decode_line
from socpipe.collectors.parsers import PARSERS, ParseContext, parse_detected
from socpipe.core.event import REQUIRED_FIELDS

CONTEXT = ParseContext(reference_time=datetime(2026, 3, 10, tzinfo=UTC))

# Text that looks like the formats (so parsers get past their shape tests) plus anything.
shaped = st.one_of(
    st.text(),
    st.builds(lambda rest: "<13>Mar  3 10:00:01 " + rest, st.text()),
    st.builds(lambda rest: "<13>1 " + rest, st.text()),
    st.builds(lambda rest: "CEF:0|" + rest, st.text()),
    st.builds(lambda rest: "type=EXECVE msg=audit(1.1:2): " + rest, st.text()),
    st.builds(lambda rest: '1.2.3.4 - - [03/Mar/2026:10:15:32 +0700] "' + rest, st.text()),
    st.builds(lambda rest: "[Sun Dec 04 04:47:44 2005] [" + rest, st.text()),
    st.builds(lambda rest: "{" + rest + "}", st.text()),
    st.builds(lambda rest: "Mar  3 10:00:01 h sshd[1]: " + rest, st.text()),
)


@settings(max_examples=400, deadline=None)
@given(shaped)
def test_every_parser_returns_an_event_or_none(line: str) -> None:
    for parser in PARSERS.values():
        event = parser.parse(line, CONTEXT)
        assert event is None or isinstance(event, dict)


@settings(max_examples=400, deadline=None)
@given(shaped)
def test_detection_always_yields_a_complete_event(line: str) -> None:
    event, _parser = parse_detected(line, CONTEXT)
    for field in REQUIRED_FIELDS:
        assert field in event
    assert event["event.original"] == line
    assert event["@timestamp"].endswith("Z")


@settings(max_examples=300, deadline=None)
@given(st.binary())
def test_any_bytes_decode(raw: bytes) -> None:
    text, valid = decode_line(raw)
    assert isinstance(text, str)
    assert valid == _is_utf8(raw)
    event, _ = parse_detected(text, CONTEXT)
    assert event["event.original"] == text


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
