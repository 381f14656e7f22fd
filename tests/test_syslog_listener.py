"""Syslog stream framing (RFC 6587) and listener addresses."""

from __future__ import annotations

import io

import pytest

from collectors.syslog_listener import parse_address, read_frames


def test_newline_and_octet_counted_frames_mix() -> None:
    stream = io.BytesIO(
        b"<13>first line\n11 <13>counted<13>after\r\n2026-03-03 starts with digits\n"
    )
    assert list(read_frames(stream)) == [
        b"<13>first line",
        b"<13>counted",
        b"<13>after",
        b"2026-03-03 starts with digits",
    ]


def test_octet_count_may_contain_newlines_and_is_capped() -> None:
    assert list(read_frames(io.BytesIO(b"9 a\nb\nc\nde"))) == [b"a\nb\nc\nde"]
    frames = list(read_frames(io.BytesIO(b"20 " + b"x" * 20 + b"next\n"), max_bytes=5))
    assert frames == [b"xxxxx", b"next"]


def test_truncated_stream_ends_cleanly() -> None:
    assert list(read_frames(io.BytesIO(b"50 short"))) == [b"short"]
    assert list(read_frames(io.BytesIO(b""))) == []


def test_addresses() -> None:
    assert parse_address("127.0.0.1:5514") == ("127.0.0.1", 5514)
    assert parse_address("[::1]:514") == ("[::1]", 514)
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_address("5514")
