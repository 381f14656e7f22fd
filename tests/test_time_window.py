"""Times from the content are checked against the time of receipt (a collector) or the
file's last write (a scan): outside the window they are replaced, kept aside, tagged,
counted and reported. Times without an offset read with no zone configured are warned of."""

from __future__ import annotations

import logging
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from socpipe.collectors.files import FileEventReader
from socpipe.collectors.parsers import ParseContext, get_parser
from socpipe.collectors.syslog_listener import SyslogReceiver
from socpipe.collectors.zones import UnsetZone, warn_if_host_not_utc
from socpipe.core import metrics
from socpipe.pipeline import main
from tests.conftest import RecordingPublisher

WRITTEN = datetime(2026, 3, 10, tzinfo=UTC)


def rfc5424(stamp: str, user: str = "root") -> str:
    return (
        f"<38>1 {stamp} web01 sshd 77 - - Failed password for {user} from 203.0.113.5 port 1 ssh2"
    )


def written_at(path: Path, text: str) -> Path:
    path.write_text(text)
    os.utime(path, (WRITTEN.timestamp(), WRITTEN.timestamp()))
    return path


def test_a_scan_sets_future_times_to_the_files_last_write_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    log = written_at(
        tmp_path / "auth.log",
        "\n".join(
            [
                rfc5424("2026-03-09T23:00:00Z", "past"),
                rfc5424("2026-03-10T00:10:00Z", "skewed"),  # within 15 minutes: clock skew
                rfc5424("2026-03-12T10:00:00Z", "future"),
                rfc5424("9999-12-31T23:59:59Z", "far"),
            ]
        )
        + "\n",
    )
    with caplog.at_level(logging.WARNING):
        reader = FileEventReader(ParseContext())
        events = list(reader.read([log]))
    assert [event["@timestamp"] for event in events] == [
        "2026-03-09T23:00:00.000Z",
        "2026-03-10T00:10:00.000Z",
        "2026-03-10T00:00:00.000Z",
        "2026-03-10T00:00:00.000Z",
    ]
    assert [event.get("socpipe.original_timestamp") for event in events] == [
        None,
        None,
        "2026-03-12T10:00:00.000Z",
        "9999-12-31T23:59:59.000Z",
    ]
    assert all("socpipe_future_timestamp" in event["tags"] for event in events[2:])
    assert reader.stats.future_timestamps == 2
    assert f"file={log}: 2 events dated more than 0:15:00 after" in caplog.text
    assert main(["scan", str(log), "--no-progress"]) == 0
    assert "in the future     2 events" in capsys.readouterr().err


class Clock:
    def __call__(self) -> datetime:
        return WRITTEN


def test_a_collector_brings_content_times_into_the_window_around_receipt(
    caplog: pytest.LogCaptureFixture,
) -> None:
    published = RecordingPublisher()
    receiver = SyslogReceiver(published, ParseContext(agency_id="so-tttt"), Clock())  # type: ignore[arg-type]
    future = metrics.TIMESTAMPS_CLAMPED.labels("syslog", "future")
    past = metrics.TIMESTAMPS_CLAMPED.labels("syslog", "past")
    before = (future._value.get(), past._value.get())
    with caplog.at_level(logging.WARNING):
        for stamp in ("9999-12-31T23:59:59Z", "9999-12-31T23:59:58Z", "2025-12-01T00:00:00Z"):
            receiver.receive(rfc5424(stamp).encode(), "192.0.2.7")
        receiver.receive(rfc5424("2026-03-09T12:00:00Z").encode(), "192.0.2.7")
    stamps = [event["@timestamp"] for event in published.events]
    assert stamps == ["2026-03-10T00:00:00.000Z"] * 3 + ["2026-03-09T12:00:00.000Z"]
    assert [event.get("tags") for event in published.events] == [
        ["socpipe_future_timestamp"],
        ["socpipe_future_timestamp"],
        ["socpipe_past_timestamp"],
        None,
    ]
    assert published.events[2]["socpipe.original_timestamp"] == "2025-12-01T00:00:00.000Z"
    assert (future._value.get(), past._value.get()) == (before[0] + 2, before[1] + 1)
    # One line per source and direction a minute, however many such messages arrive.
    assert caplog.text.count("is in the future of its receipt") == 1
    assert caplog.text.count("is in the past of its receipt") == 1


def test_cef_device_times_without_an_offset_are_in_the_configured_zone() -> None:
    line = "CEF:0|Fortinet|FortiGate|7.2|13|denied|5|src=10.0.0.1 rt=Mar 03 2026 10:00:00"
    context = ParseContext(zone=ZoneInfo("Asia/Ho_Chi_Minh"))
    event = get_parser("cef").parse(line, context)
    assert event is not None and event["@timestamp"] == "2026-03-03T03:00:00.000Z"


@pytest.fixture
def host_zone(monkeypatch: pytest.MonkeyPatch) -> object:
    """Sets this process's zone for a test (TZ, as the host's /etc/localtime would)."""

    def set_zone(name: str) -> None:
        monkeypatch.setenv("TZ", name)
        time.tzset()

    yield set_zone
    monkeypatch.undo()
    time.tzset()


def test_a_collector_without_a_zone_on_a_host_outside_utc_warns_at_start(
    host_zone, caplog: pytest.LogCaptureFixture
) -> None:
    host_zone("Asia/Ho_Chi_Minh")
    with caplog.at_level(logging.WARNING):
        warn_if_host_not_utc("collect syslog")
    assert "no --timezone given and this host's zone is +07 (UTC+07:00)" in caplog.text
    caplog.clear()
    host_zone("UTC")
    with caplog.at_level(logging.WARNING):
        warn_if_host_not_utc("collect syslog")
    assert caplog.text == ""


def test_each_source_needing_the_missing_zone_is_warned_about_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    published = RecordingPublisher()
    context = ParseContext(agency_id="so-tttt", zone=UnsetZone())
    receiver = SyslogReceiver(published, context, Clock())  # type: ignore[arg-type]
    bsd = b"<38>Mar  9 10:00:00 web01 sshd[1]: Accepted password for root from 1.2.3.4 port 2"
    with caplog.at_level(logging.WARNING):
        receiver.receive(rfc5424("2026-03-09T10:00:00+07:00").encode(), "192.0.2.1")
        for _ in range(3):
            receiver.receive(bsd, "192.0.2.2")
    assert "source=192.0.2.1" not in caplog.text
    assert caplog.text.count("source=192.0.2.2 writes times without an offset") == 1


def test_a_scan_without_a_zone_names_the_files_that_needed_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    bsd = written_at(tmp_path / "auth.log", "Mar  9 10:00:00 web01 cron[1]: hello\n")
    iso = written_at(tmp_path / "app.log", rfc5424("2026-03-09T10:00:00+07:00") + "\n")
    with caplog.at_level(logging.WARNING):
        assert main(["scan", str(bsd), str(iso), "--no-progress"]) == 0
    assert f"source={bsd} writes times without an offset" in caplog.text
    assert f"source={iso}" not in caplog.text
    assert "no time zone      1 files" in capsys.readouterr().err
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert main(["scan", str(bsd), "--timezone", "UTC", "--no-progress"]) == 0
    assert "writes times without an offset" not in caplog.text
