"""Everything socpipe writes is strict JSON, whatever the logs held."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, NamedTuple

from socpipe.collectors.files import FileEventReader
from socpipe.collectors.parsers import ParseContext
from socpipe.core import envelope, jsontext
from socpipe.core.config import ForwardingConfig, KafkaDestinationConfig
from socpipe.forwarding.destinations.base import build_destination
from socpipe.pipeline import main
from socpipe.sinks.elasticsearch import Document


def strictly(data: bytes) -> Any:
    """Parse as a strict reader would: UTF-8, and no NaN or Infinity."""

    def refuse(constant: str) -> object:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(data.decode("utf-8"), parse_constant=refuse)


def test_non_finite_numbers_become_null_at_any_depth() -> None:
    document = {"score": math.nan, "nested": {"list": [math.inf, -math.inf, 1.5]}, "n": 3}
    assert strictly(jsontext.dumps(document)) == {
        "score": None,
        "nested": {"list": [None, None, 1.5]},
        "n": 3,
    }
    # With a lone surrogate beside it, the slow path must clean the numbers too.
    assert strictly(jsontext.dumps({"score": math.nan, "x": "\ud800"})) == {
        "score": None,
        "x": "\ud800",
    }


def test_a_lone_surrogate_is_escaped_not_written_as_invalid_utf8() -> None:
    data = jsontext.dumps({"url.path": "/x\udc80y", "user.name": "Nguyễn"})
    assert strictly(data) == {"url.path": "/x\udc80y", "user.name": "Nguyễn"}
    assert envelope.decode(envelope.encode({"a": "\ud800"})) == {"a": "\ud800"}


def test_a_scan_writes_alerts_of_hostile_json_lines(tmp_path: Path) -> None:
    log = tmp_path / "app.json"
    # A JSON log line whose URL carries a lone surrogate escape and that a rule matches, and
    # one that gets truncated while carrying its own tags as a plain string.
    url = "/x\\ud800/../../etc/passwd"
    matching = (
        f'{{"url": {{"original": "{url}", "decoded": "{url}"}},'
        ' "event": {"module": "web", "dataset": "web.access"}}'
    )
    truncated = '{"tags": "x", "message": "' + "A" * 5000 + '"}'
    log.write_text(matching + "\n" + truncated + "\n")
    out = tmp_path / "alerts.jsonl"
    arguments = ["scan", str(log), "--out", str(out), "--no-progress", "--max-line-bytes", "1024"]
    assert main(arguments) == 0
    alerts = [strictly(line) for line in out.read_bytes().splitlines()]
    assert alerts, "the traversal in the hostile line must raise an alert"
    assert any(str(alert.get("url.original", "")).startswith("/x\ud800") for alert in alerts)


def test_a_truncated_line_still_json_with_tags_of_its_own_is_tagged_not_fatal(
    tmp_path: Path,
) -> None:
    """Issue 20, item 5: the cap cuts a line whose first bytes are a whole JSON object that
    carries ``"tags": "x"`` (a string): the truncation tag is added to it."""
    log = tmp_path / "app.json"
    log.write_text('{"tags": "x", "message": "hi"}' + " " * 2000 + "\n")
    reader = FileEventReader(ParseContext(), max_line_bytes=1024)
    [event] = reader.read([log])
    assert event["event.module"] == "json"
    assert event["tags"] == ["x", "socpipe_truncated"]
    out = tmp_path / "alerts.jsonl"
    arguments = ["scan", str(log), "--out", str(out), "--no-progress", "--max-line-bytes", "1024"]
    assert main(arguments) == 0


class RecordingProducer:
    """Stands in for a remote cluster: this test is about the bytes sent, not Kafka."""

    def __init__(self) -> None:
        self.values: list[bytes] = []

    def send(self, topic: str, key: bytes, value: bytes) -> RecordingProducer:
        self.values.append(value)
        return self

    def get(self, timeout: float) -> RecordMetadata:
        return RecordMetadata("alerts", 0, len(self.values))


class RecordMetadata(NamedTuple):
    topic: str
    partition: int
    offset: int


def test_the_kafka_forward_destination_sends_strict_json() -> None:
    settings = KafkaDestinationConfig(
        name="remote", topic="alerts", bootstrap_servers=["127.0.0.1:1"], timeout_secs=1
    )
    destination = build_destination(settings, ForwardingConfig())
    producer = RecordingProducer()
    destination.producer = producer  # type: ignore[attr-defined]
    destination.send({"incident.id": "i1", "anomaly.score": math.nan, "url.path": "/x\udc80"})
    assert strictly(producer.values[0]) == {
        "incident.id": "i1",
        "anomaly.score": None,
        "url.path": "/x\udc80",
    }


def test_a_bare_nan_in_a_json_log_line_never_reaches_what_socpipe_writes(
    tmp_path: Path,
) -> None:
    """Python's json module reads NaN (orjson does not): the event holds a float NaN, and
    the envelope on the events topic, the alerts file and documents are strict all the same."""
    log = tmp_path / "app.json"
    log.write_text('{"score": NaN, "url": {"original": "/../../etc/passwd"}}\n')
    [event] = FileEventReader(ParseContext()).read([log])
    assert math.isnan(event["score"])
    assert strictly(envelope.encode(event))["score"] is None
    assert strictly(Document.of("soc-events", "1", event).source)["score"] is None
