"""Event ids: incremental hashing per source gives exactly the documented digest."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from socpipe.collectors.files import FileEventReader, LineEventIds, expand_paths
from socpipe.collectors.parsers import ParseContext
from socpipe.core.event import SourceEventIds, event_id
from socpipe.core.resources import bundled_rules_dir
from socpipe.detectors.detection import Detector
from socpipe.detectors.rules import load_rules
from socpipe.scanner.run import ScanOptions, run_scan

SAMPLES = Path(__file__).resolve().parent.parent / "samples"

TEXT = st.text(st.characters(codec=None), max_size=200)  # lone surrogates included


def documented_id(agency: str, source: str, position: int | str, original: str) -> str:
    """The definition the ids have always had: one digest over the joined key."""
    key = f"{agency}\x1f{source}\x1f{position}\x1f{original}"
    return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


@settings(max_examples=300, deadline=None)
@given(TEXT, TEXT, st.one_of(st.integers(min_value=0), TEXT), TEXT)
def test_incremental_ids_equal_the_documented_digest(
    agency: str, source: str, position: int | str, original: str
) -> None:
    ids = SourceEventIds(agency, source)
    expected = documented_id(agency, source, position, original)
    assert ids.id(position, original) == expected
    assert ids.id(position, original, original.encode("utf-8", "surrogatepass")) == expected
    assert event_id(agency, source, position, original) == expected


def test_one_source_hashes_many_records_independently() -> None:
    """The prefix is copied per record: an earlier record must not leak into the next id."""
    ids = SourceEventIds("so-tttt", "/var/log/auth.log")
    first = ids.id(0, "one")
    ids.id(4, "two")
    assert ids.id(0, "one") == first == documented_id("so-tttt", "/var/log/auth.log", 0, "one")


def test_file_lines_get_ids_of_their_text_valid_or_not(tmp_path: Path) -> None:
    """A valid line is hashed from its bytes as read, an invalid one from its escaped text:
    both must give the id of the text the event carries."""
    path = tmp_path / "auth.log"
    path.write_bytes(b"caf\xc3\xa9 ok\r\nbad \xff byte\n")
    context = ParseContext(agency_id="so-tttt", reference_time=datetime(2026, 3, 10, tzinfo=UTC))
    events = list(FileEventReader(context).read([path]))
    assert [event["event.original"] for event in events] == ["café ok", "bad \\xff byte"]
    for event in events:
        assert event["event.id"] == documented_id(
            "so-tttt", str(path), event["log.offset"], event["event.original"]
        )


def _eager_and_deferred(paths: list[Path], context: ParseContext) -> tuple[list[dict], list[dict]]:
    eager = list(FileEventReader(context, max_line_bytes=64).read(paths))
    deferred = list(FileEventReader(context, max_line_bytes=64, line_ids=False).read(paths))
    return eager, deferred


def test_ids_given_later_equal_the_ids_given_while_reading(tmp_path: Path) -> None:
    """A scan leaves ids off and gives them to the events it keeps: each must be the id the
    reader would have given (valid, invalid, truncated, CRLF and NUL lines, a JSON line with
    an id of its own, gzip, and files taking turns, which the one-source cache must not mix
    up)."""
    plain = tmp_path / "auth.log"
    plain.write_bytes(
        b"caf\xc3\xa9 ok\r\nbad \xff byte\n\nnul \x00 in line\n"
        + b"x" * 100
        + b'\n{"event": {"id": "its-own"}, "message": "json"}\n'
    )
    zipped = tmp_path / "access.log.gz"
    zipped.write_bytes(gzip.compress(b"first line\nsecond line\n"))
    context = ParseContext(agency_id="so-tttt", reference_time=datetime(2026, 3, 10, tzinfo=UTC))
    eager, deferred = _eager_and_deferred([plain, zipped], context)
    assert all("event.id" not in event for event in deferred)
    identify = LineEventIds()
    # Out of reading order, switching files between events.
    for event in [*deferred[::2], *deferred[1::2]]:
        identify(event)
    assert [event["event.id"] for event in deferred] == [event["event.id"] for event in eager]
    assert any("socpipe_truncated" in event.get("tags", []) for event in deferred)
    assert any("socpipe_invalid_utf8" in event.get("tags", []) for event in deferred)
    assert any(event["event.dataset"] == "json.generic" for event in deferred)


def test_an_event_with_an_id_keeps_it() -> None:
    event = {"event.id": "from-evtx", "organization.id": "a", "log.file.path": "p"}
    LineEventIds()(event)
    assert event["event.id"] == "from-evtx"


def test_scan_alerts_carry_the_ids_of_the_events_as_read(tmp_path: Path) -> None:
    """The scan identifies only matching events: every alert's event, and every event a
    correlation counted, must have the id a full read gives it."""
    out = tmp_path / "alerts.jsonl"
    run_scan(ScanOptions([SAMPLES], out=out, progress=False))
    context = ParseContext()
    read_ids = {
        event["event.id"] for event in FileEventReader(context).read(expand_paths([SAMPLES]))
    }
    alerts = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    matched = [event["event.id"] for alert in alerts for event in alert["events"]]
    alert_ids = {alert["alert.id"] for alert in alerts}
    counted = [listed for alert in alerts for listed in alert.get("correlation.event_ids", [])]
    assert matched and set(matched) <= read_ids
    # A correlation lists the events it counted, or the alerts of the correlation it builds on.
    assert counted and set(counted) <= read_ids | alert_ids


def test_ids_deferred_until_needed_give_the_alerts_of_ids_given_while_reading(
    tmp_path: Path,
) -> None:
    """A scan identifies alerting events only, and correlation windows keep the rest's
    identity until an alert lists them: every alert (ids, listed events, their order within
    one second) must be what ids given while reading produce. A burst of failures within one
    second makes the windows order entries by id."""
    burst = tmp_path / "burst.log"
    burst.write_text(
        "".join(
            f"Mar  3 10:00:0{second} web01 sshd[{pid}]: Failed password for root from "
            f"203.0.113.9 port {40000 + pid} ssh2\n"
            for second in range(3)
            for pid in range(6)
        )
        + "Mar  3 10:00:05 web01 sshd[99]: Accepted password for root from 203.0.113.9 "
        "port 41000 ssh2\n",
        encoding="utf-8",
    )
    paths = [*expand_paths([SAMPLES]), burst]
    context = ParseContext(agency_id="so-tttt", reference_time=datetime(2026, 3, 10, tzinfo=UTC))
    rules = load_rules([bundled_rules_dir()])

    def alerts(detector: Detector, events: Iterable[dict]) -> list[dict]:
        found = [alert for event in events for alert in detector.process(event)]
        return [alert.to_dict() for alert in [*found, *detector.flush()]]

    given_while_reading = alerts(Detector(rules), FileEventReader(context).read(paths))
    deferred = alerts(
        Detector(rules, identify=LineEventIds()),
        FileEventReader(context, line_ids=False).read(paths),
    )
    assert any("correlation.event_ids" in alert for alert in deferred)
    assert deferred == given_while_reading
