"""CEF: header and extension escaping, ECS mapping."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from hypothesis import example, given, settings
from hypothesis import strategies as st

from socpipe.collectors.parsers import ParseContext, get_parser
from socpipe.collectors.parsers.cef import parse_extension, split_header

CONTEXT = ParseContext(reference_time=datetime(2026, 3, 10, tzinfo=UTC))


def test_header_escapes_pipe_and_backslash() -> None:
    split = split_header(r"CEF:0|Ven\|dor|Prod\\uct|1.0|100|Name with \| pipe|7|src=10.0.0.1")
    assert split is not None
    fields, extension = split
    assert fields == ["0", "Ven|dor", "Prod\\uct", "1.0", "100", "Name with | pipe", "7"]
    assert extension == "src=10.0.0.1"


def test_too_few_header_fields() -> None:
    assert split_header("CEF:0|a|b|c") is None
    assert get_parser("cef").parse("CEF:0|a|b|c", CONTEXT) is None


def test_extension_values_with_spaces_escapes_and_pipes() -> None:
    pairs = parse_extension(
        r"msg=Detected a b\=c here act=blocked request=/x?a\=1|b cs1=line1\nline2 path=C:\\tmp"
    )
    assert pairs == {
        "msg": "Detected a b=c here",
        "act": "blocked",
        "request": "/x?a=1|b",
        "cs1": "line1\nline2",
        "path": "C:\\tmp",
    }


# The definition of a key: at the start or after whitespace, followed by an unescaped "=".
_KEY_AT_WORD_START = re.compile(r"(?:^|(?<=\s))([A-Za-z0-9_.\[\]-]+)=")
_ESCAPE = re.compile(r"\\([\\=nr])")


def reference_pairs(text: str) -> dict[str, str]:
    def escaped(position: int) -> bool:
        backslashes = len(text[:position]) - len(text[:position].rstrip("\\"))
        return backslashes % 2 == 1

    keys = [key for key in _KEY_AT_WORD_START.finditer(text) if not escaped(key.end() - 1)]
    pairs = {}
    for index, key in enumerate(keys):
        end = keys[index + 1].start() if index + 1 < len(keys) else len(text)
        raw = text[key.end() : end].rstrip(" ")
        pairs[key.group(1)] = _ESCAPE.sub(lambda m: {"n": "\n", "r": "\r"}.get(m[1], m[1]), raw)
    return pairs


@settings(max_examples=800, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            ["a", "k1", "=", " ", "  ", "\t", "\\", "\\=", "\\n", ".", "[x]", "-", "é", "\xa0"]
        ),
        max_size=12,
    ).map("".join)
)
@example("src=1 msg=a b c=d")
@example("=x a= b=\tc=1")
@example("\ta=1")
@example("a=x\\=y\tb=1")
def test_extension_keys_follow_their_definition(text: str) -> None:
    assert parse_extension(text) == reference_pairs(text)


def test_ecs_mapping_and_severity() -> None:
    line = "CEF:0|Suricata|Suricata|7.0|2024897|ET EXPLOIT Struts|9|src=203.0.113.90 spt=44123 dst=10.20.1.15 dpt=8080 proto=TCP act=alert rt=1772539200000 custom=x"
    event = get_parser("cef").parse(line, CONTEXT)
    assert event is not None
    assert event["observer.vendor"] == "Suricata"
    assert event["event.code"] == "2024897"
    assert event["event.severity"] == 9
    assert event["source.ip"] == "203.0.113.90"
    assert event["source.port"] == 44123
    assert event["destination.port"] == 8080
    assert event["network.transport"] == "TCP"
    assert event["cef.extensions.custom"] == "x"
    assert event["@timestamp"] == "2026-03-03T12:00:00.000Z"


def test_word_severity_and_non_numeric_port() -> None:
    event = get_parser("cef").parse("CEF:1|V|P|1|1|N|High|dpt=abc", CONTEXT)
    assert event is not None
    assert event["event.severity"] == 8
    assert "destination.port" not in event
