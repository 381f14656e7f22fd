"""Long-running collectors date lines by the time they arrive, not by their start-up time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from socpipe.collectors.follow import FileFollower
from socpipe.collectors.live_context import LiveContext
from socpipe.collectors.parsers import ParseContext, parse_detected
from socpipe.collectors.syslog_listener import SyslogReceiver
from tests.conftest import RecordingPublisher

STARTED = datetime(2026, 3, 1, 8, 0, 0, 123456, tzinfo=UTC)
BASE = ParseContext(agency_id="so-tttt", reference_time=STARTED)


class _Clock:
    """A wall clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.moment = now

    def __call__(self) -> datetime:
        return self.moment


def _bsd_line(moment: datetime) -> str:
    return moment.strftime("%b %d %H:%M:%S") + " web01 sshd[7]: Accepted publickey for root"


def test_year_less_lines_are_placed_relative_to_arrival_not_start_up() -> None:
    clock = _Clock(STARTED)
    live = LiveContext(BASE, clock)
    clock.moment = STARTED + timedelta(days=5)
    event, _ = parse_detected(_bsd_line(clock.moment), live.now())
    # A context fixed at start-up would take a line five days later for a line from the
    # future and put it a year back (2025).
    assert event["@timestamp"] == "2026-03-06T08:00:00.000Z"
    stuck, _ = parse_detected(_bsd_line(clock.moment), BASE)
    assert stuck["@timestamp"].startswith("2025-")


def test_time_less_lines_get_the_arrival_time_to_the_millisecond() -> None:
    clock = _Clock(STARTED)
    live = LiveContext(BASE, clock)
    clock.moment = STARTED + timedelta(hours=30, microseconds=4_000)
    event, _ = parse_detected("a line without any time in it", live.now())
    assert event["@timestamp"] == "2026-03-02T14:00:00.127Z"
    assert event["organization.id"] == "so-tttt"


def test_one_context_per_millisecond() -> None:
    clock = _Clock(STARTED)
    live = LiveContext(BASE, clock)
    first = live.now()
    clock.moment = STARTED + timedelta(microseconds=500)  # same millisecond
    assert live.now() is first
    clock.moment = STARTED + timedelta(milliseconds=1)
    later = live.now()
    assert later is not first
    assert later.reference_time == datetime(2026, 3, 1, 8, 0, 0, 124000, tzinfo=UTC)
    assert (later.agency_id, later.zone) == (BASE.agency_id, BASE.zone)


def test_syslog_receiver_dates_by_arrival() -> None:
    clock = _Clock(STARTED + timedelta(days=3))
    published = RecordingPublisher()
    receiver = SyslogReceiver(published, BASE, clock)  # type: ignore[arg-type]
    receiver.receive(b"<38>" + _bsd_line(clock.moment).encode(), "192.0.2.1")
    receiver.receive(b"no time here", "192.0.2.1")
    assert [event["@timestamp"] for event in published.events] == [
        "2026-03-04T08:00:00.000Z",
        "2026-03-04T08:00:00.123Z",
    ]


def _following(log: Path, clock: _Clock) -> tuple[FileFollower, RecordingPublisher]:
    published = RecordingPublisher()
    follower = FileFollower(
        [str(log)],
        log.parent / "state.json",
        published,
        BASE,
        clock=clock,  # type: ignore[arg-type]
    )
    return follower, published


def test_file_follower_dates_by_arrival(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    clock = _Clock(STARTED)
    follower, published = _following(log, clock)
    clock.moment = STARTED + timedelta(days=10)
    log.write_text(_bsd_line(clock.moment) + "\nno time here\n")
    follower.poll_once()
    assert [event["@timestamp"] for event in published.events] == [
        "2026-03-11T08:00:00.000Z",
        "2026-03-11T08:00:00.123Z",
    ]


class _CountingClock(_Clock):
    def __init__(self, now: datetime) -> None:
        super().__init__(now)
        self.calls = 0

    def __call__(self) -> datetime:
        self.calls += 1
        self.moment += timedelta(milliseconds=1)  # time moves on between any two asks
        return self.moment


def test_the_lines_of_one_read_share_one_receipt_time(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    clock = _CountingClock(STARTED)
    follower, published = _following(log, clock)
    log.write_text("".join(f"no time in line {number}\n" for number in range(50)))
    asked_before = clock.calls
    follower.poll_once()
    assert len(published.events) == 50
    # They arrived together: one receipt, not fifty asks of the clock (and fifty times).
    assert clock.calls - asked_before == 1
    assert len({event["@timestamp"] for event in published.events}) == 1
    log.write_text(log.read_text() + "a later line\n")
    follower.poll_once()
    assert published.events[-1]["@timestamp"] > published.events[0]["@timestamp"]
