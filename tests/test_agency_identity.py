"""Agency identity: one events topic per agency, ids that are safe topic names, and the agency
taken from the topic (issue 20: any producer that could write soc.events chose
organization.id)."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import pytest

from socpipe.core import metrics
from socpipe.core.agency import agency_problem, agency_topic, topic_agency
from socpipe.core.config import KafkaConfig, TopicsConfig, load_config
from socpipe.core.errors import ConfigError
from socpipe.core.kafka_clients import pipeline_topics
from socpipe.daemon.identity import CLAIM_FIELD, MISMATCH_TAG, AgencyGuard
from socpipe.pipeline import main


@pytest.mark.parametrize("agency", ["so-gtvt", "ubnd-tinh", "a", "x" * 63, "0so"])
def test_valid_agency_ids(agency: str) -> None:
    assert agency_problem(agency) is None
    assert agency_topic("soc.events", agency) == f"soc.events.{agency}"


@pytest.mark.parametrize("agency", ["SO-GTVT", "so.gtvt", "so_gtvt", "", "-so", "x" * 64, "sở"])
def test_agency_ids_that_would_be_unsafe_topic_names(agency: str) -> None:
    assert agency_problem(agency) is not None
    with pytest.raises(ValueError, match="lower-case letters, digits and hyphens"):
        agency_topic("soc.events", agency)


def test_per_agency_topics_are_the_default() -> None:
    kafka = load_config().kafka
    assert kafka.per_agency
    assert kafka.events_topic("so-gtvt") == "soc.events.so-gtvt"
    collector = kafka.for_collector("so-gtvt")
    assert collector.topics.events == "soc.events.so-gtvt" and not collector.per_agency
    with pytest.raises(ConfigError, match="--agency: agency id 'So GTVT'"):
        kafka.for_collector("So GTVT")
    single = KafkaConfig(event_topics="single")
    assert single.events_topic("anything at all") == "soc.events"
    assert single.events_pattern() is None


def test_the_stages_pattern_matches_agency_topics_only() -> None:
    pattern = re.compile(KafkaConfig().events_pattern() or "")
    assert pattern.fullmatch("soc.events.so-gtvt")
    for other in ("soc.events", "soc.events.", "soc.events.so.gtvt", "socXevents.a", "soc.alerts"):
        assert not pattern.fullmatch(other), other
    assert topic_agency("soc.events", "soc.events.so-gtvt") == "so-gtvt"
    assert topic_agency("soc.events", "soc.eventsx.so-gtvt") is None
    assert topic_agency("soc.events", "soc.events.Bad") is None


def test_agency_ids_and_topics_in_the_configuration_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "socpipe.yml"
    path.write_text("kafka:\n  agencies: [so-gtvt, So.Bad]\n")
    with pytest.raises(ConfigError, match=r"kafka\.agencies\[1\]: agency id 'So\.Bad'"):
        load_config(path)
    path.write_text("kafka:\n  event_topics: shared\n")
    with pytest.raises(ConfigError, match=r"kafka\.event_topics: must be per_agency or single"):
        load_config(path)
    with pytest.raises(ConfigError, match=r"topics\.alerts: soc\.events\.alerts would read as"):
        KafkaConfig(topics=TopicsConfig(alerts="soc.events.alerts"))
    with pytest.raises(ConfigError, match="is not a Kafka topic name"):
        TopicsConfig(events="soc events")


def test_setup_creates_the_agencies_topics_and_checks_their_ids(
    capsys: pytest.CaptureFixture[str],
) -> None:
    kafka = KafkaConfig(agencies=["so-gtvt"])
    assert pipeline_topics(kafka, ["so-tttt", "so-gtvt"]) == [
        "soc.events.so-gtvt",
        "soc.events.so-tttt",
        "soc.alerts",
        "soc.deadletter",
        "soc.incidents",
        "soc.forwarding",
    ]
    # Refused before anything is created (no Kafka is contacted).
    assert main(["setup", "--agency", "so-tttt", "--agency", "SO.GTVT"]) == 2
    assert "agency id 'SO.GTVT' is not" in capsys.readouterr().err


def event(agency: str | None) -> dict:
    document: dict = {"@timestamp": "2026-03-03T10:00:00.000Z", "tags": ["web"]}
    if agency is not None:
        document |= {"organization.id": agency, "organization.name": f"Agency {agency}"}
    return document


def test_the_guard_takes_the_agency_from_the_topic(caplog: pytest.LogCaptureFixture) -> None:
    guard = AgencyGuard(KafkaConfig(), "detect-test")
    caplog.set_level(logging.WARNING, "socpipe.daemon.identity")
    before = metrics.AGENCY_MISMATCH.labels("detect-test")._value.get()

    honest = event("so-gtvt")
    assert not guard.enforce("soc.events.so-gtvt", honest)
    assert honest == event("so-gtvt")

    for _ in range(3):
        lying = event("so-bca")
        assert guard.enforce("soc.events.so-gtvt", lying)
    assert lying["organization.id"] == "so-gtvt"
    assert "organization.name" not in lying
    assert lying[CLAIM_FIELD] == "so-bca" and lying["tags"] == ["web", MISMATCH_TAG]
    assert metrics.AGENCY_MISMATCH.labels("detect-test")._value.get() == before + 3
    assert len(caplog.records) == 1 and "claimed organization.id='so-bca'" in caplog.text

    silent = event(None)
    assert guard.enforce("soc.events.so-gtvt", silent)
    assert silent["organization.id"] == "so-gtvt" and MISMATCH_TAG not in silent["tags"]

    alert = event("multiple")
    assert not guard.enforce("soc.alerts", alert)
    single = AgencyGuard(KafkaConfig(event_topics="single"), "detect-test")
    assert not single.enforce("soc.events", event("so-bca"))


def test_every_rebalance_marks_the_join_as_requested() -> None:
    """kafka-python 3.0 can leave a join started by a metadata change unfinished (see
    core/kafka_clients._rejoin_request; the agency-topics integration test shows it): the
    listener marks each rebalance as requested on the consumer's coordinator."""
    from types import SimpleNamespace

    from socpipe.core.kafka_clients import AssignmentListener, _rejoin_request

    coordinator = SimpleNamespace(rejoin_needed=False)
    coordinator.request_rejoin = lambda: setattr(coordinator, "rejoin_needed", True)
    consumer: Any = SimpleNamespace(_coordinator=coordinator)
    listener = AssignmentListener("g", _rejoin_request(consumer))
    listener.on_partitions_revoked([])
    assert coordinator.rejoin_needed is True
    # A kafka-python without that method: nothing to do, and nothing breaks.
    AssignmentListener("g", _rejoin_request(SimpleNamespace())).on_partitions_revoked([])
