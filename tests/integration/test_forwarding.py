"""The forward stage against real peers: medallion (TAXII 2.1), an mTLS webhook, rsyslog,
Kafka. Incidents are published as the detect stage publishes them (soc.incidents)."""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
import stix2
import yaml
from elasticsearch import Elasticsearch
from kafka import KafkaAdminClient

from socpipe.collectors.parsers import ParseContext, parse_detected
from socpipe.collectors.publisher import EventPublisher
from socpipe.core import metrics
from socpipe.core.config import (
    Config,
    DestinationConfig,
    IndicatorFeedConfig,
    KafkaDestinationConfig,
    MinimiseConfig,
    SyslogDestinationConfig,
    TaxiiDestinationConfig,
    TlsConfig,
    WebhookDestinationConfig,
    config_document,
)
from socpipe.core.config import ForwardPolicyConfig as Policy
from socpipe.core.kafka_clients import make_producer
from socpipe.daemon import runner
from socpipe.pipeline import main
from tests.certificates import Certificates
from tests.integration.conftest import read_topic, search, wait_for
from tests.integration.peers import (
    PASSWORD,
    USER,
    RsyslogPeer,
    TaxiiPeer,
    WebhookPeer,
)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return Certificates(tmp_path_factory.mktemp("certificates"))


@pytest.fixture
def taxii(tmp_path: Path) -> Iterator[TaxiiPeer]:
    folder = tmp_path / "taxii"
    folder.mkdir()
    peer = TaxiiPeer(folder)
    peer.start()
    yield peer
    peer.stop()


@pytest.fixture
def taxii_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_TAXII_USER", USER)
    monkeypatch.setenv("TEST_TAXII_PASSWORD", PASSWORD)


def taxii_destination(peer: TaxiiPeer, **settings: object) -> TaxiiDestinationConfig:
    return TaxiiDestinationConfig(
        name="national-taxii",
        url=peer.api_root,
        collection=peer.collection,
        username_env="TEST_TAXII_USER",
        password_env="TEST_TAXII_PASSWORD",
        allow_insecure=True,  # medallion serves plain HTTP on 127.0.0.1
        retry_initial_secs=0.2,
        retry_max_secs=1.0,
        breaker_reset_secs=2.0,
        # Each test's topic is new: what it published before the stage joined is its input.
        start_from="earliest",
        **settings,  # type: ignore[arg-type]
    )


def publish_incidents(config: Config, incidents: list[dict]) -> None:
    producer = make_producer(config.kafka)
    for incident in incidents:
        producer.send(
            config.kafka.topics.incidents,
            key=incident["incident.id"].encode(),
            value=json.dumps(incident).encode(),
        )
    producer.flush()
    producer.close()


def ledger(config: Config, expected: int) -> list[dict]:
    return read_topic(config, config.kafka.topics.forwarding, expected=expected, timeout=60)


def mutual_tls(certificates: Certificates) -> TlsConfig:
    """Trust the test CA and present the test client certificate."""
    return TlsConfig(
        ca_certs=certificates.path("ca.pem"),
        client_cert=certificates.path("client.pem"),
        client_key=certificates.path("client.key"),
    )


def publish_logins(config: Config, logins: list[tuple[str, str]]) -> None:
    """Successful SSH logins (user, source address) of agency so-tttt, as collectors send them."""
    publisher = EventPublisher(config.kafka, "test")
    for number, (user, address) in enumerate(logins):
        line = (
            f"Mar  3 10:00:0{number} web01 sshd[9]: Accepted password for {user}"
            f" from {address} port 5 ssh2"
        )
        event, _ = parse_detected(line, ParseContext(agency_id="so-tttt"))
        event["event.id"] = f"login-{uuid.uuid4().hex[:8]}-{number}"
        publisher.publish(event)
    publisher.close()


@contextmanager
def forwarding(config: Config, destinations: list[DestinationConfig], tmp_path: Path):
    configured = replace(
        config,
        forwarding=replace(
            config.forwarding,
            destinations=destinations,
            status_dir=str(tmp_path / "status"),
            group_prefix=f"{config.stages.detect_group}-forward-",
            hash_key_env="TEST_HASH_KEY",
        ),
    )
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(configured, ["forward"], stop))
    thread.start()
    try:
        yield configured
    finally:
        stop.set()
        thread.join(timeout=60)
        assert not thread.is_alive(), "the forward stage did not stop within 60 s"


@pytest.fixture(autouse=True)
def hash_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_HASH_KEY", "province-secret")
    monkeypatch.setenv("TEST_WEBHOOK_TOKEN", "webhook-test-token")


def sighted_incident_ids(peer: TaxiiPeer) -> list[str]:
    return [
        reference["external_id"]
        for sighting in peer.objects("sighting")
        for reference in sighting["external_references"]
        if reference["source_name"] == "socpipe"
    ]


def test_selected_incidents_arrive_as_valid_stix_and_are_ledgered(
    config: Config,
    taxii: TaxiiPeer,
    taxii_credentials: None,
    sample_incidents: list[dict],
    tmp_path: Path,
) -> None:
    incidents = sample_incidents
    selected = [i for i in incidents if i["incident.level"] in ("high", "critical", "medium")]
    assert 0 < len(selected) < len(incidents)
    destination = taxii_destination(taxii, policy=Policy(min_level="medium"))
    with forwarding(config, [destination], tmp_path):
        publish_incidents(config, incidents)
        wait_for(
            lambda: len(sighted_incident_ids(taxii)) >= len(selected),
            timeout=120,
            what="sightings in the TAXII collection",
        )
        records = ledger(config, expected=len(selected))
    assert sorted(sighted_incident_ids(taxii)) == sorted(i["incident.id"] for i in selected)
    bundle = {"type": "bundle", "id": "bundle--7e8c8bfa-0e76-4b6c-9a3d-2f0b1f6f6a01"}
    parsed = stix2.parse({**bundle, "objects": taxii.objects()}, allow_custom=False)
    kinds = Counter(item.type for item in parsed.objects)
    assert kinds["sighting"] == len(selected)
    assert kinds["identity"] == 2  # the province and agency so-tttt, stored once each
    status = json.loads((tmp_path / "status" / "national-taxii.json").read_text())
    assert status["sent"] == len(selected) and status["last_success"]
    # The ledger: one acknowledged record per forwarded incident, nothing for those below.
    assert sorted(r["incident.id"] for r in records) == sorted(i["incident.id"] for i in selected)
    assert {r["forward.outcome"] for r in records} == {"acknowledged"}
    assert all(r["forward.destination"] == "national-taxii" for r in records)
    assert all(r["forward.receipt"].startswith("taxii status") for r in records)


def test_taxii_outage_loses_nothing_and_duplicates_nothing(
    config: Config,
    taxii: TaxiiPeer,
    taxii_credentials: None,
    sample_incidents: list[dict],
    tmp_path: Path,
) -> None:
    alerts = sample_incidents
    with forwarding(config, [taxii_destination(taxii)], tmp_path):
        publish_incidents(config, alerts[:10])
        wait_for(lambda: len(sighted_incident_ids(taxii)) >= 10, timeout=120, what="10 sightings")
        taxii.stop()
        publish_incidents(config, alerts[10:])
        status_file = tmp_path / "status" / "national-taxii.json"
        wait_for(
            lambda: status_file.exists() and json.loads(status_file.read_text())["failures"],
            timeout=60,
            what="the forward stage noticing the outage",
        )
        taxii.start()
        wait_for(
            lambda: len(set(sighted_incident_ids(taxii))) >= len(alerts),
            timeout=180,
            what="every alert after the outage",
        )
    sighted = sighted_incident_ids(taxii)
    assert sorted(set(sighted)) == sorted(alert["incident.id"] for alert in alerts)
    # No STIX object was stored twice (same id and version).
    versions = Counter((item["id"], item.get("modified")) for item in taxii.objects())
    assert max(versions.values()) == 1


def test_webhook_gets_minimised_incidents_over_mtls_and_400_dead_letters(
    config: Config,
    taxii: TaxiiPeer,
    taxii_credentials: None,
    sample_incidents: list[dict],
    certificates: Certificates,
    tmp_path: Path,
) -> None:
    alerts = sample_incidents[:12]
    accepting = WebhookPeer(certificates)
    refusing = WebhookPeer(certificates, status=400)
    tls = mutual_tls(certificates)
    minimise = MinimiseConfig(drop_fields=["host.name"], hash_fields=["user.name", "source.ip"])
    destinations: list[DestinationConfig] = [
        WebhookDestinationConfig(
            name="hook",
            url=accepting.url,
            tls=tls,
            minimise=minimise,
            token_env="TEST_WEBHOOK_TOKEN",
            start_from="earliest",
        ),
        WebhookDestinationConfig(name="broken", url=refusing.url, tls=tls, start_from="earliest"),
        taxii_destination(taxii),
    ]
    try:
        with forwarding(config, destinations, tmp_path):
            publish_incidents(config, alerts)
            wait_for(
                lambda: len(accepting.received) >= len(alerts),
                timeout=120,
                what="alerts at the webhook",
            )
            dead = read_topic(
                config, config.kafka.topics.deadletter, expected=len(alerts), timeout=120
            )
            wait_for(
                lambda: len(set(sighted_incident_ids(taxii))) >= len(alerts),
                timeout=120,
                what="the TAXII destination carrying on",
            )
            records = ledger(config, expected=3 * len(alerts))
    finally:
        accepting.close()
        refusing.close()
    by_id = {request["body"]["incident.id"]: request for request in accepting.received}
    assert set(by_id) == {alert["incident.id"] for alert in alerts}
    for alert in alerts:
        request = by_id[alert["incident.id"]]
        key = f"{alert['incident.id']}:{alert['incident.level']}"
        assert request["headers"]["Idempotency-Key"] == key
        assert request["headers"]["Authorization"] == "Bearer webhook-test-token"
        body = request["body"]
        assert "host.name" not in body
        for name in ("user.name", "source.ip"):
            assert len(body.get(name, [])) == len(alert.get(name, []))
            assert all(value.startswith("hmac-sha256:") for value in body.get(name, []))
            for value in alert.get(name, []):
                assert f'"{value}"' not in json.dumps(body[name])
        assert "event.original" not in json.dumps(body)
    assert {record["stage"] for record in dead} == {"forward:broken"}
    assert all("HTTP 400" in record["reason"] for record in dead)
    outcomes = Counter((r["forward.destination"], r["forward.outcome"]) for r in records)
    assert outcomes == {
        ("hook", "acknowledged"): len(alerts),
        ("national-taxii", "acknowledged"): len(alerts),
        ("broken", "refused"): len(alerts),
    }
    refused = [r for r in records if r["forward.outcome"] == "refused"]
    assert all(r["forward.reason"].startswith("HTTP 400") for r in refused)


def test_syslog_receiver_gets_intact_cef_over_mutual_tls(
    config: Config, sample_incidents: list[dict], certificates: Certificates, tmp_path: Path
) -> None:
    receiver = RsyslogPeer(tmp_path, certificates)
    alerts = sample_incidents[:15]
    tls = mutual_tls(certificates)
    destination = SyslogDestinationConfig(
        name="syslog", address=f"127.0.0.1:{receiver.port}", tls=tls, start_from="earliest"
    )
    try:
        with forwarding(config, [destination], tmp_path):
            publish_incidents(config, alerts)
            wait_for(
                lambda: len(receiver.lines()) >= len(alerts),
                timeout=120,
                what="CEF lines at rsyslog",
            )
            records = ledger(config, expected=len(alerts))
    finally:
        receiver.stop()
    context = ParseContext(agency_id="national-center")
    parsed = {}
    for line in receiver.lines():
        event, parser = parse_detected(line, context)
        assert parser.name == "syslog5424", line
        parsed[event["cef.extensions.externalId"]] = event
    assert set(parsed) == {alert["incident.id"] for alert in alerts}
    for alert in alerts:
        event = parsed[alert["incident.id"]]
        assert event["cef.name"] == alert["incident.title"]
        assert event["event.code"] == alert["rule.id"]
        if "source.ip" in alert:
            assert event["source.ip"] == alert["source.ip"][0]
    # Syslog confirms nothing: the ledger says sent, not acknowledged.
    assert {r["forward.outcome"] for r in records} == {"sent"}


def test_indicators_from_the_center_raise_alerts_in_the_detect_stage(
    config: Config,
    es: Elasticsearch,
    taxii: TaxiiPeer,
    taxii_credentials: None,
) -> None:
    def indicator(number: int, address: str) -> dict:
        return {
            "type": "indicator",
            "spec_version": "2.1",
            "id": f"indicator--6d1b1a52-0000-4000-8000-{number:012d}",
            "created": "2026-01-01T00:00:00.000Z",
            "modified": "2026-01-01T00:00:00.000Z",
            "name": f"C2 server {address}",
            "pattern": f"[ipv4-addr:value = '{address}']",
            "pattern_type": "stix",
            "valid_from": "2026-01-01T00:00:00Z",
        }

    taxii.add_raw([indicator(1, "203.0.113.99")])
    metrics.INDICATORS.set(-1)  # this test's detect stage sets it; not a value left by another
    feed = IndicatorFeedConfig(
        url=taxii.api_root,
        collection=taxii.collection,
        username_env="TEST_TAXII_USER",
        password_env="TEST_TAXII_PASSWORD",
        allow_insecure=True,  # medallion serves plain HTTP on 127.0.0.1
        poll_secs=1,
    )
    configured = replace(config, forwarding=replace(config.forwarding, indicators=feed))
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(configured, ["detect", "index"], stop))
    thread.start()
    try:
        # Published after the daemon started: the poller must pick it up.
        wait_for(lambda: metrics.INDICATORS._value.get() == 1, timeout=60, what="the first poll")
        taxii.add_raw([indicator(2, "198.51.100.99")])
        wait_for(
            lambda: metrics.INDICATORS._value.get() == 2,
            timeout=60,
            what="the poller to load the indicator published after the start",
        )
        publish_logins(
            config, [("hanh", "203.0.113.99"), ("hanh", "198.51.100.99"), ("hanh", "10.20.0.1")]
        )
        hits = wait_for(
            lambda: (
                (
                    found := [
                        a
                        for a in search(es, config.elasticsearch.alerts_index)
                        if a["rule.id"] == "socpipe-indicator-match"
                    ]
                )
                and len(found) >= 2
                and found
            ),
            timeout=120,
            what="two indicator alerts",
        )
    finally:
        stop.set()
        thread.join(timeout=60)
    assert sorted(hit["source.ip"] for hit in hits) == ["198.51.100.99", "203.0.113.99"]
    for hit in hits:
        assert hit["threat.indicator.provider"].startswith(f"taxii:{taxii.api_root.rstrip('/')}")
        assert hit["indicator.id"].startswith("indicator--6d1b1a52")
        assert hit["organization.id"] == "so-tttt"


def test_forward_test_and_status_commands(
    config: Config,
    taxii: TaxiiPeer,
    taxii_credentials: None,
    certificates: Certificates,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    refusing = WebhookPeer(certificates, status=400)
    tls = mutual_tls(certificates)
    configured = replace(
        config,
        forwarding=replace(
            config.forwarding,
            status_dir=str(tmp_path / "status"),
            destinations=[
                taxii_destination(taxii, policy=Policy(min_level="high")),
                WebhookDestinationConfig(name="broken", url=refusing.url, tls=tls),
            ],
        ),
    )
    config_file = tmp_path / "socpipe.yml"
    config_file.write_text(yaml.safe_dump(config_document(configured)))
    try:
        assert main(["forward", "test", "national-taxii", "--config", str(config_file)]) == 0
        output = capsys.readouterr().out
        assert "would normally be skipped (level below high)" in output
        assert "delivered incident socpipe-test-" in output
        assert any(
            sighting["labels"][0] == "level:informational" for sighting in taxii.objects("sighting")
        )
        assert main(["forward", "test", "broken", "--config", str(config_file)]) == 1
        assert "REFUSED (permanent" in capsys.readouterr().out
        assert main(["forward", "test", "nope", "--config", str(config_file)]) == 1
        assert "no destination named 'nope'" in capsys.readouterr().out
    finally:
        refusing.close()
    publish_incidents(config, [{"incident.id": "x", "incident.level": "low"}] * 3)
    assert main(["forward", "status", "--config", str(config_file)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("destination")
    taxii_line = next(line for line in lines if line.startswith("national-taxii"))
    assert taxii_line.split()[2] == "3"  # three updates waiting, nothing committed yet
    assert "no status yet" in "\n".join(lines)


def test_incidents_reach_a_remote_kafka_topic_keyed_by_incident_id(
    config: Config, sample_incidents: list[dict], tmp_path: Path
) -> None:
    # The local broker stands in for the national center's cluster (a topic of its own).
    remote_topic = f"{config.kafka.topics.alerts}.national"
    admin = KafkaAdminClient(**config.kafka.client_options())
    admin.create_topics(
        {remote_topic: {"num_partitions": 1, "replication_factor": 1}}, wait_for_metadata=True
    )
    admin.close()
    destination = KafkaDestinationConfig(
        name="national-kafka",
        topic=remote_topic,
        bootstrap_servers=config.kafka.bootstrap_servers,
        security_protocol="PLAINTEXT",
        policy=Policy(min_level="high"),
        start_from="earliest",
    )
    alerts = sample_incidents
    selected = {a["incident.id"] for a in alerts if a["incident.level"] in ("high", "critical")}
    with forwarding(config, [destination], tmp_path):
        publish_incidents(config, alerts)
        received = read_topic(config, remote_topic, expected=len(selected), timeout=120)
    assert {record["incident.id"] for record in received} == selected
