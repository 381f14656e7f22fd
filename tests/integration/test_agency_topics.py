"""Per-agency events topics on the real Kafka: the stages follow every agency's topic by
pattern (new agencies included) and take each event's agency from its topic, never from the
payload. (That only the agency's own collector can write its topic is the broker's ACLs, tested
in secure mode: test_secure.py.)"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from elasticsearch import Elasticsearch
from kafka.admin import KafkaAdminClient

from socpipe.collectors.parsers import ParseContext, parse_detected
from socpipe.collectors.publisher import EventPublisher
from socpipe.core import envelope, metrics
from socpipe.core.config import Config
from socpipe.core.kafka_clients import ensure_topics, make_producer
from socpipe.daemon import runner
from socpipe.daemon.identity import CLAIM_FIELD, MISMATCH_TAG
from tests.integration.conftest import search, wait_for

REFERENCE = datetime(2026, 3, 10, tzinfo=UTC)
ROOT_LOGIN = (
    "Mar  3 10:05:44 web01 sshd[2301]: Accepted password for root from {ip} port 51199 ssh2"
)


@pytest.fixture
def agency_config(config: Config) -> Iterator[Config]:
    """The test's configuration with per-agency topics for two agencies."""
    tag = config.stages.detect_group.split("-")[0]
    kafka = replace(config.kafka, event_topics="per_agency", agencies=[f"a{tag}", f"b{tag}"])
    isolated = replace(config, kafka=kafka)
    ensure_topics(isolated.kafka)
    yield isolated
    admin = KafkaAdminClient(**kafka.client_options())
    prefix = f"{kafka.topics.events}."
    admin.delete_topics([name for name in admin.list_topics() if name.startswith(prefix)])
    admin.close()


@pytest.fixture
def daemon(agency_config: Config) -> Iterator[None]:
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(agency_config, ["detect", "index"], stop))
    thread.start()
    yield
    stop.set()
    thread.join(timeout=60)
    assert not thread.is_alive(), "the daemon did not stop within 60 s of being asked"


def root_login(agency: str, ip: str) -> dict:
    event, _ = parse_detected(
        ROOT_LOGIN.format(ip=ip), ParseContext(agency, f"Agency {agency}", reference_time=REFERENCE)
    )
    return event


def publish(config: Config, agency: str, *events: dict) -> None:
    """As the collector of ``agency`` does: to that agency's topic."""
    publisher = EventPublisher(config.kafka.for_collector(agency), "test")
    for event in events:
        publisher.publish(event)
    publisher.close()


def test_the_agency_is_the_topics_whatever_the_payload_claims(
    agency_config: Config, es: Elasticsearch, daemon: None
) -> None:
    first, second = agency_config.kafka.agencies
    mismatches_before = metrics.AGENCY_MISMATCH.labels("detect")._value.get()
    publish(agency_config, first, root_login(first, "203.0.113.11"))
    publish(agency_config, second, root_login(second, "203.0.113.12"))
    # A writer of the first agency's topic that claims to be the second agency.
    forged = root_login(second, "203.0.113.13")
    producer = make_producer(agency_config.kafka)
    producer.send(
        agency_config.kafka.events_topic(first), key=b"x", value=envelope.encode(forged)
    ).get(timeout=30)
    producer.close()

    settings = agency_config.elasticsearch
    alerts = wait_for(
        lambda: (found := search(es, settings.alerts_index)) and len(found) >= 3 and found,
        what="3 alerts",
    )
    events = wait_for(
        lambda: (
            (found := search(es, f"{settings.events_index_prefix}*")) and len(found) >= 3 and found
        ),
        what="3 events",
    )

    agency_of = {alert["source.ip"]: alert["organization.id"] for alert in alerts}
    assert agency_of == {"203.0.113.11": first, "203.0.113.12": second, "203.0.113.13": first}
    indexed = {event["source.ip"]: event for event in events}
    assert {ip: event["organization.id"] for ip, event in indexed.items()} == agency_of
    lie = indexed["203.0.113.13"]
    assert MISMATCH_TAG in lie["tags"] and lie[CLAIM_FIELD] == second
    assert "organization.name" not in lie  # the name came with the false claim
    honest = indexed["203.0.113.11"]
    assert MISMATCH_TAG not in honest.get("tags", []) and honest["organization.name"] == (
        f"Agency {first}"
    )
    assert metrics.AGENCY_MISMATCH.labels("detect")._value.get() == mismatches_before + 1


def test_an_agency_added_while_running_is_followed(
    agency_config: Config, es: Elasticsearch, daemon: None
) -> None:
    first = agency_config.kafka.agencies[0]
    newcomer = "c" + first[1:]
    settings = agency_config.elasticsearch
    publish(agency_config, first, root_login(first, "203.0.113.21"))
    wait_for(lambda: search(es, settings.alerts_index), what="the first alert")
    assert ensure_topics(agency_config.kafka, [newcomer]) == [
        agency_config.kafka.events_topic(newcomer)
    ]
    publish(agency_config, newcomer, root_login(newcomer, "203.0.113.22"))
    # The stages look for new matching topics every 30 s (kafka_clients.PATTERN_METADATA_MAX_AGE_MS).
    alerts = wait_for(
        lambda: (found := search(es, settings.alerts_index)) and len(found) >= 2 and found,
        timeout=120,
        what="an alert from the agency added while running",
    )
    assert {alert["organization.id"] for alert in alerts} == {first, newcomer}
