"""A native crash while reading costs the file being read, named with the signal, and nothing
else: the reading runs in a child process that really dies here (SIGSEGV sent to itself,
as a crash in the EVTX parser would end it)."""

from __future__ import annotations

import faulthandler
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from socpipe.collectors.files import FileEventReader
from socpipe.collectors.parsers import ParseContext
from socpipe.collectors.parsers.evtx_records import read_evtx
from socpipe.core.event import Event
from socpipe.scanner.isolation import ChildCrashed, ChildStreams, call_in_child, stream_in_child
from tests.conftest import FILES


def crash() -> None:
    faulthandler.disable()  # pytest's handler would print a traceback for the crash
    os.kill(os.getpid(), signal.SIGSEGV)


def numbers_then_crash(count: int) -> Iterator[int]:
    yield from range(count)
    crash()


def test_items_sent_before_a_crash_are_kept_and_the_crash_is_named() -> None:
    received = []
    with pytest.raises(ChildCrashed) as raised:
        for item in stream_in_child("numbers.bin", numbers_then_crash, 600):
            received.append(item)
    # Items travel in batches of 32: those sent before the crash arrive, in order.
    assert received == list(range(576))
    assert raised.value.exitcode == -signal.SIGSEGV
    assert str(raised.value) == (
        "numbers.bin: the reader was killed by signal 11 (SIGSEGV) after 576 records"
    )


def test_an_exception_in_the_child_is_raised_in_the_parent() -> None:
    def fail() -> int:
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        call_in_child("input", fail)
    assert call_in_child("input", sum, [1, 2, 3]) == 6


def evtx_then_crash(
    path: Path, context: ParseContext, start: int, end: int | None
) -> Iterator[tuple[int, Event]]:
    """The real reader for three records, then the process dies as a native crash ends it."""
    for number, record in enumerate(read_evtx(path, context, start, end)):
        if number == 3:
            crash()
        yield record


def test_a_crashed_evtx_reader_costs_its_file_only(tmp_path: Path) -> None:
    evtx = tmp_path / "security.evtx"
    evtx.write_bytes((FILES / "security_sample.evtx").read_bytes())
    text = tmp_path / "auth.log"
    text.write_text("Mar  3 10:00:01 web01 cron[1]: hello\n" * 5)
    streams = ChildStreams()  # as a scan reads EVTX files
    reader = FileEventReader(ParseContext(), isolate=streams, evtx_records=evtx_then_crash)
    try:
        events = list(reader.read([evtx, text, evtx]))
    finally:
        streams.close()
    # The three records parsed before the crash were not sent yet (a batch is 32): they
    # are among the records reported lost, by number.
    assert [event["event.module"] for event in events] == ["system"] * 5
    assert (
        reader.stats.unreadable_files
        == [f"{evtx}: the reader was killed by signal 11 (SIGSEGV)"] * 2
    )
    assert reader.stats.damaged == [f"{evtx}: chunk 0: records 1-7 unreadable or missing"] * 2
    assert reader.stats.missing_records == 14


def test_isolation_gives_the_same_events(tmp_path: Path) -> None:
    evtx = FILES / "security_sample.evtx"
    direct = list(FileEventReader(ParseContext()).read([evtx]))
    isolated = list(FileEventReader(ParseContext(), isolate=stream_in_child).read([evtx]))
    assert isolated == direct and len(direct) == 7


def pids(count: int) -> Iterator[int]:
    """``count`` times the process's id."""
    for _ in range(count):
        yield os.getpid()


def pid_then_fail(reason: str) -> Iterator[int]:
    yield os.getpid()
    raise ValueError(reason)


def test_one_child_serves_call_after_call_and_survives_an_exception() -> None:
    streams = ChildStreams()
    try:
        first = list(streams("a", pids, 40))
        assert len(first) == 40 and len(set(first)) == 1 and first[0] != os.getpid()
        with pytest.raises(ValueError, match="bad header"):
            list(streams("b", pid_then_fail, "bad header"))
        # The exception ended that stream only: the same child reads the next file.
        assert list(streams("c", pids, 1)) == first[:1]
    finally:
        streams.close()


def test_a_crashed_or_abandoned_child_is_replaced() -> None:
    streams = ChildStreams()
    try:
        [before] = list(streams("a", pids, 1))
        with pytest.raises(ChildCrashed, match=r"crash\.bin: the reader was killed by signal 11"):
            list(streams("crash.bin", numbers_then_crash, 3))
        [after_crash] = list(streams("b", pids, 1))
        assert after_crash != before
        partly = streams("c", pids, 1000)
        next(partly)
        partly.close()  # the consumer stopped mid-stream: that child is killed
        [after_abandon] = list(streams("d", pids, 1))
        assert after_abandon not in (before, after_crash)
    finally:
        streams.close()


def test_a_scans_evtx_child_reads_every_file_as_the_scan_itself_would(tmp_path: Path) -> None:
    copies = []
    for number in range(3):
        copy = tmp_path / f"copy{number}.evtx"
        copy.write_bytes((FILES / "security_sample.evtx").read_bytes())
        copies.append(copy)
    direct = list(FileEventReader(ParseContext()).read(copies))
    streams = ChildStreams()
    try:
        through_child = list(FileEventReader(ParseContext(), isolate=streams).read(copies))
    finally:
        streams.close()
    assert through_child == direct and len(direct) == 21
