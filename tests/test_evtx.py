"""Windows .evtx files through the evtx parser."""

from __future__ import annotations

from pathlib import Path

import pytest

from socpipe.collectors.files import FileEventReader, ReadStats
from socpipe.collectors.parsers import ParseContext
from socpipe.collectors.parsers.evtx_records import RecordIds
from socpipe.pipeline import main
from tests.conftest import FILES


def test_every_record_of_an_evtx_file_becomes_an_event() -> None:
    reader = FileEventReader(ParseContext(agency_id="so-tttt"))
    events = list(reader.read([FILES / "security_sample.evtx"]))
    assert len(events) == 7
    first = events[0]
    assert first["event.code"] == "5152"
    assert first["winlog.channel"] == "Security"
    assert first["host.name"] == "temporal"
    assert first["@timestamp"] == "2016-06-29T15:24:34.346Z"
    assert first["winlog.event_data.SourceAddress"] == "23.94.153.202"
    assert first["winlog.provider_name"] == "Microsoft-Windows-Security-Auditing"
    assert first["organization.id"] == "so-tttt"
    assert len({event["event.id"] for event in events}) == 7
    assert all(event["event.original"].startswith("{") for event in events)


def test_a_damaged_evtx_file_is_reported_not_fatal(tmp_path) -> None:
    broken = tmp_path / "broken.evtx"
    broken.write_bytes(b"ElfFile\x00" + b"\x00" * 100)
    good = tmp_path / "good.log"
    good.write_text("Mar  3 10:00:01 web01 cron[1]: hello\n")
    reader = FileEventReader(ParseContext())
    events = list(reader.read([broken, good]))
    assert [event["message"] for event in events] == ["hello"]
    assert len(reader.stats.unreadable_files) == 1
    assert "broken.evtx" in reader.stats.unreadable_files[0]


SAMPLE = (FILES / "security_sample.evtx").read_bytes()
#: Where the sample's second record starts (records begin with the mark "**\0\0").
SECOND_RECORD = SAMPLE.find(b"\x2a\x2a\x00\x00", SAMPLE.find(b"\x2a\x2a\x00\x00", 4096 + 512) + 1)


def damaged(tmp_path: Path, name: str, data: bytes) -> tuple[list[dict], ReadStats]:
    path = tmp_path / name
    path.write_bytes(data)
    reader = FileEventReader(ParseContext())
    events = list(reader.read([path]))
    return events, reader.stats


def test_a_truncated_evtx_file_says_which_records_are_lost(tmp_path: Path) -> None:
    # The parser reads nothing of a chunk cut short, and says nothing.
    events, stats = damaged(tmp_path, "cut.evtx", SAMPLE[: len(SAMPLE) - 30_000])
    assert events == []
    assert stats.missing_records == 7
    assert stats.damaged == [
        f"{tmp_path / 'cut.evtx'}: chunk 0: records 1-7 unreadable or missing"
        " (the file is truncated)"
    ]


def test_a_zeroed_record_and_the_records_after_it_are_reported(tmp_path: Path) -> None:
    data = bytearray(SAMPLE)
    data[SECOND_RECORD : SECOND_RECORD + 400] = bytes(400)
    events, stats = damaged(tmp_path, "zeroed.evtx", bytes(data))
    assert len(events) == 1  # the first record; the zeroed one and those after it are lost
    assert stats.missing_records == 6
    assert stats.damaged == [
        f"{tmp_path / 'zeroed.evtx'}: chunk 0: records 2-7 unreadable or missing"
    ]


def test_a_zeroed_chunk_header_is_reported(tmp_path: Path) -> None:
    data = bytearray(SAMPLE)
    data[4096 : 4096 + 128] = bytes(128)
    events, stats = damaged(tmp_path, "header.evtx", bytes(data))
    assert events == []
    assert (
        len(stats.damaged) == 1 and "chunk 0 at byte 4,096 has no valid header" in stats.damaged[0]
    )


def test_the_scan_summary_lists_damaged_evtx_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "cut.evtx").write_bytes(SAMPLE[: len(SAMPLE) - 30_000])
    assert main(["scan", str(tmp_path), "--no-progress"]) == 0
    summary = capsys.readouterr().err
    assert "7 EVTX records unreadable or missing" in summary
    assert f"damaged: {tmp_path / 'cut.evtx'}: chunk 0: records 1-7" in summary


def test_record_ids_are_kept_as_ranges() -> None:
    ids = RecordIds()
    for record_id in [*range(1, 100), *range(300, 400), 150, 151, 149, 200]:
        ids.add(record_id)
    assert ids.ranges == [[1, 99], [149, 151], [200, 200], [300, 399]]
    assert ids.missing_from(1, 410) == [(100, 148), (152, 199), (201, 299), (400, 410)]
    ids.add(100)
    ids.add(148)
    assert ids.ranges[:2] == [[1, 100], [148, 151]]
