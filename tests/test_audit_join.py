"""An audit process start waits for its call's CWD record, with the lines read after it, in
every reader: the scan, the file follower, the syslog receiver. Nothing is lost, the order is
the order of the lines, and what waits is bounded in number and, in a live collector, in time
(an injected clock: no test sleeps)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from kafka.errors import KafkaTimeoutError

from socpipe.collectors.files import FileEventReader, FilePart
from socpipe.collectors.follow import FileFollower
from socpipe.collectors.parsers import ParseContext, parse_detected
from socpipe.collectors.parsers.audit_join import IDLE_SECS, MAX_HELD_EVENTS, CwdJoin
from socpipe.collectors.syslog_listener import SyslogReceiver
from socpipe.core.event import Event, SourceEventIds
from tests.audit_records import call
from tests.conftest import RecordingPublisher

CONTEXT = ParseContext(agency_id="so-tttt", reference_time=datetime(2026, 3, 10, tzinfo=UTC))
SSHD = "Mar  3 10:05:44 web01 sshd[1]: Failed password for root from 203.0.113.5 port 22 ssh2"


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def append(path: Path, lines: list[str]) -> None:
    with path.open("a") as handle:
        handle.write("".join(line + "\n" for line in lines))


def line_offsets(path: Path) -> list[int]:
    data = path.read_bytes()
    return [0, *(index + 1 for index, byte in enumerate(data[:-1]) if byte == ord("\n"))]


def scan(path: Path) -> list[Event]:
    return list(FileEventReader(CONTEXT).read([path]))


def released_at(path: Path) -> list[tuple[str, int]]:
    """Each event of a scan with how many lines had been read when it came out."""
    reader = FileEventReader(CONTEXT)
    return [(event["event.original"], reader.stats.lines) for event in reader.read([path])]


def starts(events: list[Event]) -> list[Event]:
    return [event for event in events if event.get("event.type") == ["start"]]


def types(events: list[Event]) -> list[str]:
    return [event.get("auditd.log.type", "-") for event in events]


# --- the scan ---------------------------------------------------------------------------------


def test_a_scan_gives_a_start_its_directory_and_every_line_its_own_offset_and_id(
    tmp_path: Path,
) -> None:
    lines = [SSHD, *call(501, 2245, 2201, "/usr/bin/id", ["id"], cwd="/srv/app"), SSHD]
    path = write(tmp_path / "audit.log", lines)
    events = scan(path)
    assert [event["event.original"] for event in events] == lines
    (start,) = starts(events)
    assert start["process.working_directory"] == "/srv/app"
    assert start["process.executable"] == "/usr/bin/id"
    ids = SourceEventIds(CONTEXT.agency_id, str(path))
    offsets = line_offsets(path)
    assert [event["log.offset"] for event in events] == offsets
    assert [event["event.id"] for event in events] == [
        ids.id(offset, line) for offset, line in zip(offsets, lines, strict=True)
    ]


def test_a_start_leaves_as_soon_as_its_cwd_record_is_read(tmp_path: Path) -> None:
    lines = call(502, 2246, 2201, "/usr/bin/id", ["id"]) + [SSHD] * 3
    out = released_at(write(tmp_path / "audit.log", lines))
    # SYSCALL at once; EXECVE with CWD, the third line; the rest at once.
    assert [read for _original, read in out] == [1, 3, 3, 4, 5, 6, 7, 8]


def test_every_execve_record_of_a_long_command_line_gets_the_directory(tmp_path: Path) -> None:
    payload = ("echo " + "A" * 60 + " | base64 -d | bash").encode().hex().upper()
    syscall, _execve, cwd, path_record, proctitle = call(
        503, 2247, 2201, "/usr/bin/bash", ["bash"], cwd="/dev/shm"
    )
    stamp = "1772539200.503:503"
    execves = [
        f'type=EXECVE msg=audit({stamp}): argc=3 a0="bash" a1="-c" a2_len={len(payload)}'
        f" a2[0]={payload[:60]}",
        f"type=EXECVE msg=audit({stamp}): a2[1]={payload[60:]}",
    ]
    events = scan(write(tmp_path / "audit.log", [syscall, *execves, cwd, path_record, proctitle]))
    assert types(events) == ["SYSCALL", "EXECVE", "EXECVE", "CWD", "PATH", "PROCTITLE"]
    assert [event.get("process.working_directory") for event in starts(events)] == [
        "/dev/shm",
        "/dev/shm",
    ]


def test_a_call_without_a_cwd_record_lets_its_start_go_at_its_next_record(tmp_path: Path) -> None:
    syscall, execve, path_record, proctitle = call(504, 2248, 2201, "/usr/bin/id", ["id"], cwd=None)
    eoe = "type=EOE msg=audit(1772539200.504:504):"
    for sibling in (path_record, proctitle, eoe):
        lines = [syscall, execve, sibling, SSHD]
        out = released_at(write(tmp_path / "audit.log", lines))
        assert [original for original, _read in out] == lines
        assert out[1][1] == 3  # the EXECVE left with the third line, not at the end
        (start,) = starts(scan(tmp_path / "audit.log"))
        assert "process.working_directory" not in start


def test_interleaved_calls_each_get_their_own_directory(tmp_path: Path) -> None:
    first = call(601, 3001, 3000, "/usr/bin/curl", ["curl", "http://198.51.100.23/x"], cwd="/tmp")
    second = call(602, 3002, 3000, "/usr/bin/base64", ["base64", "-d"], cwd="/home/ops")
    lines = [first[0], second[0], first[1], second[1], second[2], SSHD, first[2], *first[3:]]
    lines += second[3:]
    events = scan(write(tmp_path / "audit.log", lines))
    assert [event["event.original"] for event in events] == lines
    assert {
        event["process.executable"]: event["process.working_directory"] for event in starts(events)
    } == {"/usr/bin/curl": "/tmp", "/usr/bin/base64": "/home/ops"}


def test_a_cwd_record_of_another_host_is_not_joined(tmp_path: Path) -> None:
    # The same time and serial on two hosts (auditd's name_format): the records stay apart.
    web01 = ["node=web01 " + line for line in call(700, 4001, 4000, "/usr/bin/id", ["id"])]
    web02 = ["node=web02 " + line for line in call(700, 4001, 4000, "/usr/bin/id", ["id"])]
    web02[2] = web02[2].replace("/var/www/html", "/tmp/.x")
    lines = [web01[0], web01[1], web02[0], web02[1], web02[2], web01[2], *web01[3:], *web02[3:]]
    events = scan(write(tmp_path / "audit.log", lines))
    assert [event["event.original"] for event in events] == lines
    assert {event["host.name"]: event["process.working_directory"] for event in starts(events)} == {
        "web01": "/var/www/html",
        "web02": "/tmp/.x",
    }


def test_a_flood_of_starts_without_siblings_holds_a_bounded_number_of_lines(
    tmp_path: Path,
) -> None:
    lines = [call(10_000 + n, 5000 + n, 1, "/usr/bin/id", ["id"])[1] for n in range(1000)]
    out = released_at(write(tmp_path / "audit.log", lines))
    assert [original for original, _read in out] == lines
    held = [read - position for position, (_original, read) in enumerate(out, 1)]
    assert max(held) == MAX_HELD_EVENTS


def test_the_end_of_a_file_releases_what_is_held(tmp_path: Path) -> None:
    syscall, execve, *_rest = call(801, 6001, 1, "/usr/bin/id", ["id"])
    events = scan(write(tmp_path / "audit.log", [syscall, execve]))
    assert types(events) == ["SYSCALL", "EXECVE"]
    assert "process.working_directory" not in events[1]


def test_a_part_of_a_file_releases_what_it_holds_at_its_end(tmp_path: Path) -> None:
    lines = [*call(802, 6002, 1, "/usr/bin/id", ["id"]), SSHD]
    path = write(tmp_path / "audit.log", lines)
    cut = line_offsets(path)[2]  # the CWD record starts the second part
    reader = FileEventReader(CONTEXT)
    parts = [
        list(reader.read_part(FilePart(path, start, end)))
        for start, end in ((0, cut), (cut, 10**9))
    ]
    assert [types(part) for part in parts] == [
        ["SYSCALL", "EXECVE"],
        ["CWD", "PATH", "PROCTITLE", "-"],
    ]
    # A part starts with nothing remembered: the directory in the next part is not joined.
    assert "process.working_directory" not in parts[0][1]


# --- the join itself: bounds and the idle time ------------------------------------------------


def test_a_held_start_waits_idle_secs_without_a_record_of_its_call_then_goes() -> None:
    context = CONTEXT.new_stream()
    join = context.audit.join
    syscall, execve, *_rest = call(901, 7001, 1, "/usr/bin/id", ["id"])
    out = join.admit(parse_detected(syscall, context)[0], now=100.0)
    start = parse_detected(execve, context)[0]
    assert not join.idle()
    assert join.admit(start, now=100.0) == []
    assert join.admit({"message": "behind it"}, now=100.5) == []
    assert join.expire(100.0 + IDLE_SECS - 0.001) == []
    assert join.expire(100.0 + IDLE_SECS) == [start, {"message": "behind it"}]
    assert join.idle() and len(out) == 1


def test_the_calls_waiting_are_bounded_even_when_their_starts_are_never_admitted() -> None:
    join = CwdJoin(max_held=4)
    events: list[Event] = [{} for _ in range(10)]
    for number, event in enumerate(events):
        join.wait(f"call{number}", event)
    for number in range(10):
        join.sibling(f"call{number}", "CWD", {"process.working_directory": "/srv"})
    # The oldest calls were given up as the fifth and later ones came: only four waited.
    assert [bool(event) for event in events] == [False] * 6 + [True] * 4


def test_a_call_of_endless_execve_records_is_cut_at_the_bound() -> None:
    join = CwdJoin(max_held=4)
    events: list[Event] = [{} for _ in range(10)]
    for event in events:
        join.wait("the same call", event)
    join.sibling("the same call", "CWD", {"process.working_directory": "/srv"})
    assert [bool(event) for event in events] == [False] * 8 + [True] * 2


# --- the file follower ------------------------------------------------------------------------


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def goes_after_idle_secs(
    ticks: Ticks, check: Callable[[], object], published: RecordingPublisher
) -> None:
    """A SYSCALL record is out and its EXECVE record held: half the idle time keeps it, the
    whole lets it go (``check``: the collector looking at what waits)."""
    ticks.now += IDLE_SECS / 2
    check()
    assert types(published.events) == ["SYSCALL"]
    ticks.now += IDLE_SECS / 2
    check()
    assert types(published.events) == ["SYSCALL", "EXECVE"]


def follower(path: Path, published: RecordingPublisher, ticks: Ticks) -> FileFollower:
    return FileFollower(
        [str(path)],
        path.with_suffix(".state"),
        published,  # type: ignore[arg-type]
        CONTEXT,
        clock=lambda: CONTEXT.reference_time,
        ticks=ticks,
    )


def saved_offset(path: Path) -> int:
    return json.loads(path.with_suffix(".state").read_text())[str(path)]["offset"]


def test_the_follower_holds_a_start_across_polls_and_saves_no_position_past_its_call(
    tmp_path: Path,
) -> None:
    syscall, execve, cwd, *rest = call(1001, 8001, 1, "/usr/bin/id", ["id"], cwd="/srv")
    path = write(tmp_path / "audit.log", [SSHD, syscall, execve])
    published, ticks = RecordingPublisher(), Ticks()
    tail = follower(path, published, ticks)
    tail.poll_once()
    assert types(published.events) == ["-", "SYSCALL"]
    # Where the held start's call begins: reading again from there makes the start whole.
    assert saved_offset(path) == line_offsets(path)[1]
    ticks.now += IDLE_SECS / 2
    append(path, [cwd, *rest])
    tail.poll_once()
    assert types(published.events) == ["-", "SYSCALL", "EXECVE", "CWD", "PATH", "PROCTITLE"]
    assert published.events[2]["process.working_directory"] == "/srv"
    assert saved_offset(path) == path.stat().st_size


def test_lines_of_other_files_read_after_a_held_start_wait_behind_it(
    tmp_path: Path,
) -> None:
    audit = write(tmp_path / "audit.log", [SSHD, *call(1002, 8002, 1, "/usr/bin/id", ["id"])[:2]])
    auth = write(tmp_path / "auth.log", [SSHD] * 3)
    published = RecordingPublisher()
    tail = FileFollower(
        [str(audit), str(auth)], tmp_path / "state.json", published, CONTEXT, ticks=Ticks()
    )
    tail.poll_once()
    state = json.loads((tmp_path / "state.json").read_text())
    assert state[str(audit)]["offset"] == line_offsets(audit)[1]
    # The auth.log lines were read after the held EXECVE: they wait behind it, in order.
    assert types(published.events) == ["-", "SYSCALL"]
    assert state[str(auth)]["offset"] == 0


def test_a_follower_restarted_with_a_start_held_makes_it_whole_and_loses_nothing(
    tmp_path: Path,
) -> None:
    lines = [SSHD, *call(1003, 8003, 1, "/usr/bin/id", ["id"], cwd="/srv"), SSHD]
    path = write(tmp_path / "audit.log", lines[:3])
    before, after = RecordingPublisher(), RecordingPublisher()
    follower(path, before, Ticks()).poll_once()  # then the collector is killed
    append(path, lines[3:])
    follower(path, after, Ticks()).poll_once()
    scanned = [event["event.id"] for event in scan(path)]
    # At least once: the SYSCALL record, published before the kill, is read again (same id).
    assert [event["event.id"] for event in before.events] == scanned[:2]
    assert [event["event.id"] for event in after.events] == scanned[1:]
    (start,) = starts(after.events)
    assert start["process.working_directory"] == "/srv"
    assert start["process.executable"] == "/usr/bin/id"


def test_a_follower_stopping_with_a_start_held_publishes_it_first(tmp_path: Path) -> None:
    lines = [*call(1004, 8004, 1, "/usr/bin/id", ["id"]), SSHD]
    path = write(tmp_path / "audit.log", lines[:2])
    before, after = RecordingPublisher(), RecordingPublisher()
    stop = threading.Event()
    stop.set()
    follower(path, before, Ticks()).run(stop)
    assert types(before.events) == ["SYSCALL", "EXECVE"]
    assert "process.working_directory" not in before.events[1]
    assert saved_offset(path) == path.stat().st_size
    append(path, lines[2:])
    follower(path, after, Ticks()).poll_once()
    assert types(after.events) == ["CWD", "PATH", "PROCTITLE", "-"]


def test_the_follower_lets_a_start_go_after_idle_secs_without_its_call(tmp_path: Path) -> None:
    path = write(tmp_path / "audit.log", call(1005, 8005, 1, "/usr/bin/id", ["id"])[:2])
    published, ticks = RecordingPublisher(), Ticks()
    tail = follower(path, published, ticks)
    tail.poll_once()
    goes_after_idle_secs(ticks, tail.poll_once, published)
    assert saved_offset(path) == path.stat().st_size


class FailingOnce(RecordingPublisher):
    """Kafka does not acknowledge the first confirmation."""

    def __init__(self) -> None:
        super().__init__()
        self.failed = False

    def confirm(self) -> int:
        if not self.failed:
            self.failed = True
            raise KafkaTimeoutError("no acknowledgement (test)")
        return super().confirm()


def test_kafka_failing_with_a_start_held_reads_it_again_and_loses_nothing(tmp_path: Path) -> None:
    lines = [*call(1006, 8006, 1, "/usr/bin/id", ["id"], cwd="/srv"), SSHD]
    path = write(tmp_path / "audit.log", lines[:2])
    published = FailingOnce()
    tail = follower(path, published, Ticks())
    tail.poll_once()  # the SYSCALL is not acknowledged, the EXECVE held: both read again
    assert types(published.events) == ["SYSCALL"]
    append(path, lines[2:])
    tail.poll_once()
    assert [event["event.original"] for event in published.events[1:]] == lines
    (start,) = starts(published.events)
    assert start["process.working_directory"] == "/srv"


# --- the syslog receiver ----------------------------------------------------------------------


def syslog(host: str, record: str) -> bytes:
    return f"<14>Mar  3 10:00:00 {host} audispd: {record}".encode()


def receiver(published: RecordingPublisher, ticks: Ticks) -> SyslogReceiver:
    return SyslogReceiver(
        published,  # type: ignore[arg-type]
        CONTEXT,
        lambda: CONTEXT.reference_time,
        ticks=ticks,
    )


def test_audit_records_in_syslog_messages_are_joined_per_host() -> None:
    web01 = call(1101, 9001, 1, "/usr/bin/id", ["id"], cwd="/srv")
    web02 = call(1101, 9001, 1, "/usr/bin/id", ["id"], cwd="/tmp/.x")
    messages = [syslog("web01", web01[0]), syslog("web01", web01[1]), syslog("web02", web02[0])]
    messages += [syslog("web02", web02[1]), syslog("web02", web02[2]), syslog("web01", web01[2])]
    published = RecordingPublisher()
    collector = receiver(published, Ticks())
    for message in messages:
        collector.receive(message, "192.0.2.7")
    assert [event["event.original"] for event in published.events] == [
        message.decode() for message in messages
    ]
    assert {
        event["host.name"]: event["process.working_directory"] for event in starts(published.events)
    } == {"web01": "/srv", "web02": "/tmp/.x"}


def test_the_syslog_receiver_lets_a_start_go_when_its_host_goes_quiet_or_it_stops() -> None:
    syscall, execve, *_rest = call(1102, 9002, 1, "/usr/bin/id", ["id"])
    published, ticks = RecordingPublisher(), Ticks()
    collector = receiver(published, ticks)
    for record in (syscall, execve):
        collector.receive(syslog("web01", record), "192.0.2.7")
    goes_after_idle_secs(ticks, collector.expire, published)
    collector.receive(syslog("web01", call(1103, 9003, 1, "/usr/bin/id", ["id"])[1]), "peer")
    assert len(published.events) == 2
    collector.finish()
    assert types(published.events) == ["SYSCALL", "EXECVE", "EXECVE"]
