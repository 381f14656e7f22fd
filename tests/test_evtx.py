"""Windows .evtx files through the evtx parser."""

from __future__ import annotations

from socpipe.collectors.files import FileEventReader
from socpipe.collectors.parsers import ParseContext
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
