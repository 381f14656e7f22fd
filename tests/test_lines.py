"""The one line reader (collectors/lines.py), and the two readers built on it: the scan's
file reader and the file follower must see the same lines, with the same offsets and tags."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from socpipe.collectors.files import FileEventReader
from socpipe.collectors.follow import FileFollower
from socpipe.collectors.lines import Line, LineSplitter, read_lines
from socpipe.collectors.parsers import ParseContext
from socpipe.core.event import Event
from tests.conftest import RecordingPublisher

CONTEXT = ParseContext(agency_id="so-tttt", reference_time=datetime(2026, 3, 10, tzinfo=UTC))
SSHD = b"Mar  3 10:00:01 web01 sshd[1]: Failed password for root from 203.0.113.5 port 1 ssh2"
FORGED = b"Mar  3 10:00:02 web01 sshd[1]: Accepted password for root from 203.0.113.66 port 2 ssh2"


def split_in_pieces(data: bytes, cuts: list[int], cap: int) -> list[Line]:
    """What a splitter returns when ``data`` arrives cut at ``cuts``, then ends."""
    splitter = LineSplitter(cap)
    lines: list[Line] = []
    previous = 0
    for cut in [*sorted(cuts), len(data)]:
        lines.extend(splitter.feed(data[previous:cut]))
        previous = cut
    last = splitter.finish()
    return [*lines, *([last] if last else [])]


def test_lines_offsets_terminators_and_the_last_line() -> None:
    lines = list(read_lines(io.BytesIO(b"one\r\ntwo\n\nthree"), 1024))
    assert lines == [(0, b"one", False), (5, b"two", False), (9, b"", False), (10, b"three", False)]


def test_a_long_line_keeps_its_head_and_its_tail_is_never_a_line() -> None:
    padded = SSHD + b" " + b"A" * 5000 + FORGED + b"\n" + SSHD + b"\n"
    lines = list(read_lines(io.BytesIO(padded), 1024))
    assert [line.truncated for line in lines] == [True, False]
    assert lines[0] == Line(0, padded[:1024], True)
    assert lines[1].offset == padded.index(b"\n") + 1 and lines[1].data == SSHD
    assert not any(FORGED in line.data for line in lines)


def test_a_long_line_is_returned_before_its_end_arrives_and_memory_stays_bounded() -> None:
    splitter = LineSplitter(100)
    assert splitter.feed(b"x" * 60) == []
    [line] = splitter.feed(b"y" * 60)
    assert line == Line(0, b"x" * 60 + b"y" * 40, True)
    # The rest of it, however long, is skipped; the next line starts after its newline.
    for _ in range(50):
        assert splitter.feed(b"z" * 1000) == []
    assert splitter.resume_offset == 0, "a restart must give the truncated line, not its tail"
    assert splitter.feed(b"z\nnext\n") == [Line(120 + 50_000 + 2, b"next", False)]
    assert splitter.resume_offset == 120 + 50_000 + 7


def test_starting_inside_a_file_leaves_the_first_line_to_the_part_it_started_in() -> None:
    data = b"first line\nsecond\nthird\n"
    start = 3  # inside "first line"
    lines = list(read_lines(io.BytesIO(data[start - 1 :]), 1024, start - 1, skip_first=True))
    assert lines == [Line(11, b"second", False), Line(18, b"third", False)]


def reference_lines(data: bytes, cap: int) -> list[Line]:
    """The rules, applied to the whole input at once."""
    lines, offset = [], 0
    *complete, last = data.split(b"\n")
    for segment in complete:
        long = len(segment) > cap
        lines.append(Line(offset, segment[:cap] if long else segment.rstrip(b"\r"), long))
        offset += len(segment) + 1
    if last:
        long = len(last) > cap
        lines.append(Line(offset, last[:cap] if long else last.rstrip(b"\r"), long))
    return lines


@given(
    data=st.lists(
        st.sampled_from([b"a", b"bc", b"\n", b"\r\n", b"\r", b"x" * 30, b"\xff"]), max_size=40
    ).map(b"".join),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=8),
    cap=st.integers(min_value=1, max_value=40),
)
def test_lines_follow_the_rules_however_the_input_is_cut(
    data: bytes, cuts: list[int], cap: int
) -> None:
    expected = reference_lines(data, cap)
    assert split_in_pieces(data, [], cap) == expected
    assert split_in_pieces(data, [min(cut, len(data)) for cut in cuts], cap) == expected


def scan(path: Path, cap: int) -> list[Event]:
    return list(FileEventReader(CONTEXT, max_line_bytes=cap).read([path]))


def follow(path: Path, cap: int) -> list[Event]:
    published = RecordingPublisher()
    follower = FileFollower(
        [str(path)],
        path.with_suffix(".state"),
        published,
        CONTEXT,
        max_line_bytes=cap,
        clock=lambda: CONTEXT.reference_time,  # the lines arrive a week after they were written
    )
    follower.poll_once()
    return published.events


READERS: dict[str, Callable[[Path, int], list[Event]]] = {"scan": scan, "follow": follow}


@pytest.mark.parametrize("reader", READERS)
def test_both_readers_apply_the_same_line_rules(tmp_path: Path, reader: str) -> None:
    path = tmp_path / "auth.log"
    path.write_bytes(
        SSHD
        + b"\r\n"
        + SSHD.replace(b"root", b"r\xe9\xffot")
        + b"\n"
        + b"\n   \n"
        + SSHD
        + b" "
        + b"P" * 3000
        + FORGED
        + b"\n"
        + SSHD
        + b"\n"
    )
    data = path.read_bytes()
    events = READERS[reader](path, 1024)
    second = data.index(b"\n") + 1
    padded = data.index(SSHD + b" P")
    assert [event["log.offset"] for event in events] == [
        0,
        second,
        padded,
        data.index(b"\n", padded) + 1,
    ]
    assert [event.get("tags", []) for event in events] == [
        [],
        ["socpipe_invalid_utf8"],
        ["socpipe_truncated"],
        [],
    ]
    assert "\\xe9\\xff" in events[1]["event.original"]
    assert not any("203.0.113.66" in event["event.original"] for event in events[3:])
    assert all(event["event.original"] == SSHD.decode() for event in (events[0], events[3]))


def test_both_readers_give_the_same_events(tmp_path: Path) -> None:
    path = tmp_path / "auth.log"
    path.write_bytes(b"".join(SSHD + b" %d\n" % n for n in range(50)) + SSHD + b"P" * 2000 + b"\n")
    scanned, followed = scan(path, 1024), follow(path, 1024)
    assert [event["event.id"] for event in scanned] == [event["event.id"] for event in followed]
    assert len(scanned) == 51 and scanned == followed


def test_the_follower_waits_for_a_line_to_end(tmp_path: Path) -> None:
    path = tmp_path / "auth.log"
    path.write_bytes(SSHD + b"\n" + SSHD[:20])
    published = RecordingPublisher()
    follower = FileFollower([str(path)], tmp_path / "state.json", published, CONTEXT)
    follower.poll_once()
    assert len(published.events) == 1
    with path.open("ab") as handle:
        handle.write(SSHD[20:] + b"\n")
    follower.poll_once()
    assert [event["event.original"] for event in published.events] == [SSHD.decode()] * 2
    assert published.events[1]["log.offset"] == len(SSHD) + 1


def test_a_truncated_line_split_across_polls_never_yields_its_tail(tmp_path: Path) -> None:
    path = tmp_path / "auth.log"
    path.write_bytes(SSHD + b" " + b"P" * 1500)
    published = RecordingPublisher()
    follower = FileFollower(
        [str(path)],
        tmp_path / "state.json",
        published,
        CONTEXT,
        max_line_bytes=1024,
        clock=lambda: CONTEXT.reference_time,
    )
    follower.poll_once()
    with path.open("ab") as handle:
        handle.write(b"P" * 1500 + FORGED + b"\n" + SSHD + b"\n")
    follower.poll_once()
    assert [event.get("tags", []) for event in published.events] == [["socpipe_truncated"], []]
    assert not any("203.0.113.66" in event["event.original"] for event in published.events)
