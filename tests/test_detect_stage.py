"""The detect stage's incident publishing without Kafka: a fake producer records what the
stage sent, and can refuse it. The real Kafka is in tests/integration/test_incidents.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kafka.consumer.fetcher import ConsumerRecord
from prometheus_client import REGISTRY

from socpipe.collectors.parsers import ParseContext, parse_detected
from socpipe.core import envelope
from socpipe.core.config import Config
from socpipe.daemon.stages import DetectStage
from socpipe.detectors.detection import Detector
from socpipe.detectors.rules import load_rules
from tests.conftest import REPO

START = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)
CONTEXT = ParseContext(agency_id="so-tttt", reference_time=datetime(2026, 3, 10, tzinfo=UTC))


class Sent:
    def __init__(self, error: Exception | None) -> None:
        self.error = error

    def get(self) -> None:
        if self.error is not None:
            raise self.error


class FakeProducer:
    """Keeps what was sent; the sends of a batch marked to fail raise when confirmed."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.fail_next = False

    def send(self, topic: str, key: bytes | None, value: bytes) -> Sent:
        self.sent.extend((topic, envelope.decode(line)) for _, line in envelope.unpack(value))
        return Sent(RuntimeError("kafka refused") if self.fail_next else None)

    def flush(self) -> None:
        return None


def records(lines: list[str], first_offset: int = 0) -> list[ConsumerRecord]:
    found = []
    for number, line in enumerate(lines):
        event, _ = parse_detected(line, CONTEXT)
        event["event.id"] = f"line-{first_offset + number}"
        found.append(
            ConsumerRecord(
                "t.events",
                0,
                0,
                first_offset + number,
                0,
                0,
                None,
                envelope.encode(event),
                None,
                None,
                1,
                1,
                0,
            )
        )
    return found


def failures(count: int, first: int = 0) -> list[str]:
    return [
        (START + timedelta(seconds=first + n)).strftime("%b %e %H:%M:%S")
        + f" web01 sshd[811]: Failed password for root from 203.0.113.50 port {40000 + n} ssh2"
        for n in range(count)
    ]


@pytest.fixture
def stage() -> DetectStage:
    producer = FakeProducer()
    return DetectStage(Config(), producer, Detector(load_rules([REPO / "rules"])))  # type: ignore[arg-type]


def updates(stage: DetectStage) -> list[dict[str, Any]]:
    producer: FakeProducer = stage.producer  # type: ignore[assignment]
    return [doc for topic, doc in producer.sent if topic == stage.config.kafka.topics.incidents]


def test_alerts_carry_their_incident_and_updates_follow_them(stage: DetectStage) -> None:
    stage.process(records(failures(12)))
    producer: FakeProducer = stage.producer  # type: ignore[assignment]
    alerts = [doc for topic, doc in producer.sent if topic == stage.config.kafka.topics.alerts]
    [update] = updates(stage)
    assert {alert["incident.id"] for alert in alerts} == {update["incident.id"]}
    assert update["incident.alert_count"] == len(alerts) == 13  # 12 failures, 1 brute force
    assert update["incident.previous_level"] is None
    # What the stage holds is on its metrics (the soak benchmark reads them beside its
    # memory): one incident; the keys of its two rules, 13 alerts and 12 events linked to it.
    assert REGISTRY.get_sample_value("socpipe_incidents_open") == 1
    assert REGISTRY.get_sample_value("socpipe_incident_links") == 2 + 13 + 12


def test_a_batch_kafka_refused_sends_its_updates_again_unchanged(stage: DetectStage) -> None:
    producer: FakeProducer = stage.producer  # type: ignore[assignment]
    batch = records(failures(12))
    producer.fail_next = True
    with pytest.raises(RuntimeError, match="kafka refused"):
        stage.process(batch)
    refused = updates(stage)
    producer.fail_next = False
    producer.sent.clear()
    stage.process(batch)  # the runner hands the same batch back
    [again] = updates(stage)
    assert again == refused[0]  # same alerts counted once, same previous level


def test_history_re_read_after_a_restart_sends_nothing_and_keeps_the_level(
    stage: DetectStage,
) -> None:
    history = records(failures(12))
    stage.replay(history)
    assert stage.producer.sent == []  # type: ignore[attr-defined]
    assert stage.state_horizon_secs == max(
        stage.detector.state_horizon_secs, stage.incidents.horizon_secs
    )
    stage.process(records(failures(3, first=20), first_offset=12))
    [update] = updates(stage)
    # The incident the history built grows: the same id as before the restart, its count
    # includes the history, and its previous level is the one the history reached.
    assert update["incident.alert_count"] == 16
    assert update["incident.previous_level"] == "medium"
    unbroken = DetectStage(Config(), FakeProducer(), Detector(load_rules([REPO / "rules"])))  # type: ignore[arg-type]
    unbroken.process(history)
    unbroken.producer.sent.clear()  # type: ignore[attr-defined]
    unbroken.process(records(failures(3, first=20), first_offset=12))
    assert updates(unbroken) == [update]
