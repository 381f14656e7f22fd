"""Incidents end to end on the real Kafka and Elasticsearch: a brute force becomes one
incident and one forwarded message; incident writes merge and never touch triage; a new
destination does not send history it was not asked to."""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from elasticsearch import Elasticsearch
from kafka import KafkaConsumer
from kafka.structs import TopicPartition

from socpipe.collectors.parsers import ParseContext, parse_detected
from socpipe.collectors.publisher import EventPublisher
from socpipe.core.config import Config, DestinationConfig, WebhookDestinationConfig, config_document
from socpipe.core.config import ForwardPolicyConfig as Policy
from socpipe.core.kafka_clients import group_caught_up, make_producer
from socpipe.daemon import runner
from socpipe.pipeline import main
from socpipe.sinks.elasticsearch import ElasticsearchSink
from tests.certificates import Certificates
from tests.integration.conftest import search, wait_for
from tests.integration.peers import WebhookPeer

CONTEXT = ParseContext(agency_id="so-tttt", reference_time=datetime(2026, 3, 10, tzinfo=UTC))
START = datetime(2026, 3, 3, 10, 1, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return Certificates(tmp_path_factory.mktemp("certificates"))


def mutual_tls(certificates: Certificates):  # type: ignore[no-untyped-def]
    from socpipe.core.config import TlsConfig

    return TlsConfig(
        ca_certs=certificates.path("ca.pem"),
        client_cert=certificates.path("client.pem"),
        client_key=certificates.path("client.key"),
    )


def with_destinations(
    config: Config, destinations: list[DestinationConfig], folder: Path
) -> Config:
    return replace(
        config,
        forwarding=replace(
            config.forwarding,
            destinations=destinations,
            status_dir=str(folder / "status"),
            group_prefix=f"{config.stages.detect_group}-forward-",
        ),
    )


@contextmanager
def daemon(config: Config, stages: list[str]) -> Iterator[None]:
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(config, stages, stop))
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=60)
        assert not thread.is_alive(), "the daemon did not stop within 60 s"


def group_placed(config: Config, group: str) -> bool:
    """Whether a forward group has committed a position on every incidents partition (a new
    destination commits its start as soon as it is given the partitions)."""
    consumer = KafkaConsumer(
        group_id=group, enable_auto_commit=False, **config.kafka.client_options()
    )
    try:
        topic = config.kafka.topics.incidents
        partitions = [TopicPartition(topic, n) for n in consumer.partitions_for_topic(topic) or ()]
        return bool(partitions) and all(consumer.committed(p) is not None for p in partitions)
    finally:
        consumer.close()


def publish_lines(config: Config, lines: list[str]) -> None:
    publisher = EventPublisher(config.kafka, "test")
    run = uuid.uuid4().hex[:8]
    for number, line in enumerate(lines):
        event, _ = parse_detected(line, CONTEXT)
        event["event.id"] = f"bf-{run}-{number}"
        publisher.publish(event)
    publisher.close()


def sshd(seconds: int, text: str) -> str:
    return (START + timedelta(seconds=seconds)).strftime(
        "%b %e %H:%M:%S"
    ) + f" web01 sshd[811]: {text}"


BRUTE_FORCE = [
    sshd(n, f"Failed password for root from 203.0.113.50 port {40000 + n} ssh2") for n in range(15)
]
LOGIN = sshd(40, "Accepted password for root from 203.0.113.50 port 41000 ssh2")


def test_a_brute_force_is_one_incident_and_one_forwarded_message(
    config: Config,
    es: Elasticsearch,
    certificates: Certificates,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    receiver = WebhookPeer(certificates)
    destination = WebhookDestinationConfig(
        name="national-hook",
        url=receiver.url,
        tls=mutual_tls(certificates),
        policy=Policy(min_level="medium"),
    )
    configured = with_destinations(config, [destination], tmp_path)
    group = f"{configured.forwarding.group_prefix}national-hook"
    settings = config.elasticsearch
    try:
        with daemon(configured, ["detect", "index", "forward"]):
            wait_for(
                lambda: group_placed(config, group), timeout=120, what="the destination placed"
            )
            publish_lines(config, BRUTE_FORCE)
            alerts = wait_for(
                lambda: (found := search(es, settings.alerts_index)) and len(found) >= 16 and found,
                timeout=120,
                what="16 alerts",
            )
            [incident] = wait_for(
                lambda: (
                    (found := search(es, settings.incidents_index))
                    and found[0]["incident.alert_count"] >= 16
                    and found
                ),
                timeout=60,
                what="the incident with its 16 alerts",
            )
            wait_for(lambda: receiver.received, timeout=60, what="the incident at the webhook")
            # Everything the detect stage published was judged by the forward stage.
            wait_for(
                lambda: group_caught_up(config.kafka, group, config.kafka.topics.incidents),
                timeout=60,
                what="the forward stage catching up",
            )
            first_delivery = list(receiver.received)
            # The login that follows makes it critical: forwarded once more, as the same incident.
            publish_lines(config, [LOGIN])
            wait_for(lambda: len(receiver.received) >= 2, timeout=120, what="the critical update")
            wait_for(
                lambda: group_caught_up(config.kafka, group, config.kafka.topics.incidents),
                timeout=60,
                what="the forward stage catching up",
            )
            ledger = wait_for(
                lambda: (
                    (found := search(es, settings.forwarding_index)) and len(found) >= 2 and found
                ),
                timeout=60,
                what="two ledger records in Elasticsearch",
            )
    finally:
        receiver.close()

    # Fifteen failures for root and the brute-force correlation: sixteen alerts, one incident.
    assert len(alerts) == 16
    assert {alert["incident.id"] for alert in alerts} == {incident["incident.id"]}
    assert incident["incident.level"] == "medium"
    assert sorted(incident["incident.alert_ids"]) == sorted(alert["alert.id"] for alert in alerts)
    assert incident["incident.status"] == "new"
    assert incident["source.ip"] == ["203.0.113.50"] and incident["host.name"] == ["web01"]
    # One message for the brute force, then one when it became critical.
    assert len(first_delivery) == 1
    assert [request["body"]["incident.id"] for request in receiver.received] == [
        incident["incident.id"]
    ] * 2
    assert [request["body"]["incident.level"] for request in receiver.received] == [
        "medium",
        "critical",
    ]
    final = es.get(index=settings.incidents_index, id=incident["incident.id"])["_source"]
    assert final["incident.level"] == "critical" and final["incident.alert_count"] >= 18
    assert sorted((r["incident.level"], r["forward.outcome"]) for r in ledger) == [
        ("critical", "acknowledged"),
        ("medium", "acknowledged"),
    ]

    config_file = tmp_path / "socpipe.yml"
    config_file.write_text(yaml.safe_dump(config_document(configured)))
    capsys.readouterr()
    assert (
        main(["forward", "status", "--alert", alerts[0]["alert.id"], "--config", str(config_file)])
        == 0
    )
    output = capsys.readouterr().out
    assert f"belongs to incident {incident['incident.id']}" in output
    assert output.count("national-hook") == 2 and output.count("acknowledged") == 2
    day = ledger[0]["@timestamp"][:10]
    assert main(["forward", "report", "--day", day, "--config", str(config_file)]) == 0
    report = capsys.readouterr().out
    assert "national-hook: 2 records (acknowledged 2)" in report
    assert "delivered by level   critical 1, medium 1" in report
    assert "delivered by agency  so-tttt 2" in report


def test_incident_writes_merge_monotonically_and_never_touch_triage(
    config: Config, es: Elasticsearch
) -> None:
    index = config.elasticsearch.incidents_index
    sink = ElasticsearchSink(es, config.elasticsearch)

    def update(count: int, level: str, severity: int, last: str, users: list[str]) -> dict:
        return {
            "@timestamp": "2026-03-03T10:00:00.000Z",
            "incident.id": "inc-1",
            "incident.title": f"{level} title",
            "incident.level": level,
            "event.severity": severity,
            "incident.first_seen": "2026-03-03T10:00:00.000Z",
            "incident.last_seen": last,
            "incident.alert_count": count,
            "incident.alert_ids": [f"a{n}" for n in range(count)],
            "incident.alerts": [{"alert.id": f"a{n}"} for n in range(count)],
            "user.name": users,
            "incident.previous_level": None,
        }

    small = update(2, "medium", 3, "2026-03-03T10:00:05.000Z", ["root"])
    large = update(5, "high", 4, "2026-03-03T10:03:00.000Z", ["root", "admin"])
    first = sink.merge_incidents(index, [large])
    assert (first.created, first.updated, first.rejected) == (1, 0, [])
    # An analyst acknowledges it (a flat partial update, as triage writes).
    es.update(index=index, id="inc-1", doc={"incident.status": "acknowledged"}, refresh=True)
    # A replay of an older update, then the newer again: nothing moves back, nothing changes.
    for replayed in ([small], [large], [small, large]):
        assert sink.merge_incidents(index, replayed).unchanged == 1
    stored = es.get(index=index, id="inc-1")["_source"]
    assert stored["incident.alert_count"] == 5 and stored["incident.level"] == "high"
    assert stored["incident.last_seen"] == "2026-03-03T10:03:00.000Z"
    assert stored["incident.status"] == "acknowledged"
    assert "incident.previous_level" not in stored
    # A newer update (another process's share, say) grows it; triage stays.
    grown = update(6, "high", 4, "2026-03-03T10:04:00.000Z", ["oracle"])
    grown["incident.first_seen"] = "2026-03-03T09:59:00.000Z"
    assert sink.merge_incidents(index, [grown]).updated == 1
    stored = es.get(index=index, id="inc-1")["_source"]
    assert stored["incident.alert_count"] == 6
    assert stored["incident.first_seen"] == "2026-03-03T09:59:00.000Z"
    assert stored["user.name"] == ["root", "admin", "oracle"]
    assert stored["incident.status"] == "acknowledged"
    assert stored["incident.title"] == "high title"
    # A write between the read and the write (an analyst, another index process) is not
    # lost: the guarded write fails, and the merge reads and merges again.
    real_fetch = sink._fetch

    def fetch_then_edit(*arguments: object) -> object:
        found = real_fetch(*arguments)  # type: ignore[arg-type]
        es.update(index=index, id="inc-1", doc={"incident.assignee": "hanh"}, refresh=True)
        sink._fetch = real_fetch  # type: ignore[method-assign]
        return found

    sink._fetch = fetch_then_edit  # type: ignore[method-assign, assignment]
    later = update(7, "critical", 5, "2026-03-03T10:05:00.000Z", [])
    assert sink.merge_incidents(index, [later]).updated == 1
    stored = es.get(index=index, id="inc-1")["_source"]
    assert stored["incident.assignee"] == "hanh" and stored["incident.level"] == "critical"
    assert stored["incident.alert_count"] == 7


def test_a_new_destination_sends_no_history_unless_moved_on_purpose(
    config: Config, certificates: Certificates, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def incident(number: int) -> dict:
        return {
            "incident.id": f"inc-{number}",
            "incident.title": "test",
            "incident.level": "high",
            "incident.previous_level": None,
            "event.severity": 4,
            "incident.first_seen": "2026-03-03T10:00:00.000Z",
            "incident.last_seen": "2026-03-03T10:00:00.000Z",
            "incident.alert_count": 1,
            "organization.id": "so-tttt",
        }

    def publish(numbers: range) -> None:
        producer = make_producer(config.kafka)
        for number in numbers:
            producer.send(
                config.kafka.topics.incidents,
                key=f"inc-{number}".encode(),
                value=json.dumps(incident(number)).encode(),
            )
        producer.flush()
        producer.close()

    receiver = WebhookPeer(certificates)
    destination = WebhookDestinationConfig(
        name="hook", url=receiver.url, tls=mutual_tls(certificates)
    )
    configured = with_destinations(config, [destination], tmp_path)
    group = f"{configured.forwarding.group_prefix}hook"
    config_file = tmp_path / "socpipe.yml"
    config_file.write_text(yaml.safe_dump(config_document(configured)))

    def received() -> list[str]:
        return sorted(request["body"]["incident.id"] for request in receiver.received)

    try:
        publish(range(3))  # retained history from before the destination existed
        with daemon(configured, ["forward"]):
            wait_for(
                lambda: group_placed(config, group), timeout=120, what="the destination placed"
            )
            publish(range(3, 5))
            wait_for(lambda: len(receiver.received) >= 2, timeout=120, what="the new incidents")
            wait_for(
                lambda: group_caught_up(config.kafka, group, config.kafka.topics.incidents),
                timeout=60,
                what="the forward stage catching up",
            )
            assert received() == ["inc-3", "inc-4"]
            capsys.readouterr()
            # While the stage runs, the group cannot be moved.
            assert (
                main(
                    [
                        "forward",
                        "start-from",
                        "hook",
                        "earliest",
                        "--yes",
                        "--config",
                        str(config_file),
                    ]
                )
                == 1
            )
            assert "REFUSED: the group has 1 active member(s)" in capsys.readouterr().out
        # Stopped: without --yes it only says what would happen.
        assert (
            main(["forward", "start-from", "hook", "earliest", "--config", str(config_file)]) == 0
        )
        plan = capsys.readouterr().out
        assert "nothing changed: add --yes" in plan
        resent = re.findall(r"(\d+) update\(s\) forwarded again", plan)
        assert sum(map(int, resent)) == 5
        assert group_caught_up(config.kafka, group, config.kafka.topics.incidents)
        assert (
            main(
                ["forward", "start-from", "hook", "earliest", "--yes", "--config", str(config_file)]
            )
            == 0
        )
        assert "moved; 5 update(s) will be forwarded again" in capsys.readouterr().out
        with daemon(configured, ["forward"]):
            wait_for(
                lambda: len(receiver.received) >= 7, timeout=120, what="the history, on purpose"
            )
    finally:
        receiver.close()
    assert received() == ["inc-0", "inc-1", "inc-2", "inc-3", "inc-3", "inc-4", "inc-4"]
