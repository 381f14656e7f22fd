"""The forward stage against real peers: medallion (TAXII 2.1), an mTLS webhook, Kafka."""

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
from socpipe.core.kafka_clients import group_caught_up, make_producer
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
        retry_initial_secs=0.2,
        retry_max_secs=1.0,
        breaker_reset_secs=2.0,
        **settings,  # type: ignore[arg-type]
    )


def publish_alerts(config: Config, alerts: list[dict]) -> None:
    producer = make_producer(config.kafka)
    for alert in alerts:
        producer.send(
            config.kafka.topics.alerts,
            key=alert["alert.id"].encode(),
            value=json.dumps(alert).encode(),
        )
    producer.flush()
    producer.close()


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


def sighted_alert_ids(peer: TaxiiPeer) -> list[str]:
    return [
        reference["external_id"]
        for sighting in peer.objects("sighting")
        for reference in sighting["external_references"]
        if reference["source_name"] == "socpipe"
    ]


def test_selected_alerts_arrive_as_valid_stix(
    config: Config,
    taxii: TaxiiPeer,
    taxii_credentials: None,
    sample_alerts: list[dict],
    tmp_path: Path,
) -> None:
    alerts = sample_alerts[:20]
    selected = [a for a in alerts if a["rule.level"] in ("high", "critical", "medium")]
    assert 0 < len(selected) < len(alerts)
    destination = taxii_destination(taxii, policy=Policy(min_level="medium"))
    with forwarding(config, [destination], tmp_path):
        publish_alerts(config, alerts)
        wait_for(
            lambda: len(sighted_alert_ids(taxii)) >= len(selected),
            timeout=120,
            what="sightings in the TAXII collection",
        )
    assert sorted(sighted_alert_ids(taxii)) == sorted(a["alert.id"] for a in selected)
    bundle = {"type": "bundle", "id": "bundle--7e8c8bfa-0e76-4b6c-9a3d-2f0b1f6f6a01"}
    parsed = stix2.parse({**bundle, "objects": taxii.objects()}, allow_custom=False)
    kinds = Counter(item.type for item in parsed.objects)
    assert kinds["sighting"] == len(selected)
    assert kinds["identity"] == 2  # the province and agency so-tttt, stored once each
    status = json.loads((tmp_path / "status" / "national-taxii.json").read_text())
    assert status["sent"] == len(selected) and status["last_success"]


def test_taxii_outage_loses_nothing_and_duplicates_nothing(
    config: Config,
    taxii: TaxiiPeer,
    taxii_credentials: None,
    sample_alerts: list[dict],
    tmp_path: Path,
) -> None:
    alerts = sample_alerts[:40]
    with forwarding(config, [taxii_destination(taxii)], tmp_path):
        publish_alerts(config, alerts[:10])
        wait_for(lambda: len(sighted_alert_ids(taxii)) >= 10, timeout=120, what="10 sightings")
        taxii.stop()
        publish_alerts(config, alerts[10:])
        status_file = tmp_path / "status" / "national-taxii.json"
        wait_for(
            lambda: status_file.exists() and json.loads(status_file.read_text())["failures"],
            timeout=60,
            what="the forward stage noticing the outage",
        )
        taxii.start()
        wait_for(
            lambda: len(set(sighted_alert_ids(taxii))) >= len(alerts),
            timeout=180,
            what="every alert after the outage",
        )
    sighted = sighted_alert_ids(taxii)
    assert sorted(set(sighted)) == sorted(alert["alert.id"] for alert in alerts)
    # No STIX object was stored twice (same id and version).
    versions = Counter((item["id"], item.get("modified")) for item in taxii.objects())
    assert max(versions.values()) == 1


def test_webhook_gets_minimised_alerts_over_mtls_and_400_dead_letters(
    config: Config,
    taxii: TaxiiPeer,
    taxii_credentials: None,
    sample_alerts: list[dict],
    certificates: Certificates,
    tmp_path: Path,
) -> None:
    alerts = sample_alerts[:12]
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
        ),
        WebhookDestinationConfig(name="broken", url=refusing.url, tls=tls),
        taxii_destination(taxii),
    ]
    try:
        with forwarding(config, destinations, tmp_path):
            publish_alerts(config, alerts)
            wait_for(
                lambda: len(accepting.received) >= len(alerts),
                timeout=120,
                what="alerts at the webhook",
            )
            dead = read_topic(
                config, config.kafka.topics.deadletter, expected=len(alerts), timeout=120
            )
            wait_for(
                lambda: len(set(sighted_alert_ids(taxii))) >= len(alerts),
                timeout=120,
                what="the TAXII destination carrying on",
            )
    finally:
        accepting.close()
        refusing.close()
    by_id = {request["body"]["alert.id"]: request for request in accepting.received}
    assert set(by_id) == {alert["alert.id"] for alert in alerts}
    for alert in alerts:
        request = by_id[alert["alert.id"]]
        assert request["headers"]["Idempotency-Key"] == alert["alert.id"]
        assert request["headers"]["Authorization"] == "Bearer webhook-test-token"
        payload = json.dumps(request["body"])
        for value in (alert.get("host.name"), alert.get("user.name"), alert.get("source.ip")):
            if value:
                assert f'"{value}"' not in payload
        assert "event.original" not in payload
    assert {record["stage"] for record in dead} == {"forward:broken"}
    assert all("HTTP 400" in record["reason"] for record in dead)


def test_syslog_receiver_gets_intact_cef_over_mutual_tls(
    config: Config, sample_alerts: list[dict], certificates: Certificates, tmp_path: Path
) -> None:
    receiver = RsyslogPeer(tmp_path, certificates)
    alerts = sample_alerts[:15]
    tls = mutual_tls(certificates)
    destination = SyslogDestinationConfig(
        name="syslog", address=f"127.0.0.1:{receiver.port}", tls=tls
    )
    try:
        with forwarding(config, [destination], tmp_path):
            publish_alerts(config, alerts)
            wait_for(
                lambda: len(receiver.lines()) >= len(alerts),
                timeout=120,
                what="CEF lines at rsyslog",
            )
    finally:
        receiver.stop()
    context = ParseContext(agency_id="national-center")
    parsed = {}
    for line in receiver.lines():
        event, parser = parse_detected(line, context)
        assert parser.name == "syslog5424", line
        parsed[event["cef.extensions.externalId"]] = event
    assert set(parsed) == {alert["alert.id"] for alert in alerts}
    for alert in alerts:
        event = parsed[alert["alert.id"]]
        assert event["cef.name"] == alert["rule.name"]
        assert event["event.code"] == alert["rule.id"]
        if "source.ip" in alert:
            assert event["source.ip"] == alert["source.ip"]


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
        assert "delivered alert socpipe-test-" in output
        assert any(
            sighting["labels"][0] == "level:informational" for sighting in taxii.objects("sighting")
        )
        assert main(["forward", "test", "broken", "--config", str(config_file)]) == 1
        assert "REFUSED (permanent" in capsys.readouterr().out
        assert main(["forward", "test", "nope", "--config", str(config_file)]) == 1
        assert "no destination named 'nope'" in capsys.readouterr().out
    finally:
        refusing.close()
    publish_alerts(config, [{"alert.id": "x", "rule.level": "low"}] * 3)
    assert main(["forward", "status", "--config", str(config_file)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("destination")
    taxii_line = next(line for line in lines if line.startswith("national-taxii"))
    assert taxii_line.split()[2] == "3"  # three alerts waiting, nothing committed yet
    assert "no status yet" in "\n".join(lines)


def test_alerts_reach_a_remote_kafka_topic_keyed_by_alert_id(
    config: Config, sample_alerts: list[dict], tmp_path: Path
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
    )
    alerts = sample_alerts[:25]
    selected = {a["alert.id"] for a in alerts if a["rule.level"] in ("high", "critical")}
    with forwarding(config, [destination], tmp_path):
        publish_alerts(config, alerts)
        received = read_topic(config, remote_topic, expected=len(selected), timeout=120)
    assert {record["alert.id"] for record in received} == selected
    assert all("event.original" not in json.dumps(record) for record in received)


def test_one_daemon_detects_indexes_and_forwards(
    config: Config, es: Elasticsearch, certificates: Certificates, tmp_path: Path
) -> None:
    receiver = WebhookPeer(certificates)
    tls = mutual_tls(certificates)
    destination = WebhookDestinationConfig(
        name="ministry-hook",
        url=receiver.url,
        tls=tls,
        policy=Policy(min_level="high"),
    )
    configured = replace(
        config,
        forwarding=replace(
            config.forwarding,
            destinations=[destination],
            status_dir=str(tmp_path / "status"),
            group_prefix=f"{config.stages.detect_group}-forward-",
        ),
    )
    stop = threading.Event()
    stages = ["detect", "index", "forward"]
    thread = threading.Thread(target=runner.run, args=(configured, stages, stop))
    thread.start()
    try:
        publish_logins(
            config, [("deploy", "203.0.113.7"), ("root", "203.0.113.7"), ("hanh", "203.0.113.7")]
        )
        wait_for(lambda: receiver.received, timeout=120, what="the alert at the webhook")
        # A second (duplicate or unselected) request would have been sent before the forward
        # group committed past every alert.
        wait_for(
            lambda: group_caught_up(
                config.kafka,
                f"{configured.forwarding.group_prefix}ministry-hook",
                config.kafka.topics.alerts,
            ),
            timeout=120,
            what="the forward stage to commit every alert",
        )
    finally:
        stop.set()
        thread.join(timeout=60)
        receiver.close()
    [request] = receiver.received
    assert request["body"]["rule.name"] == "SSH Login As Root Accepted"
    indexed = search(es, config.elasticsearch.alerts_index)
    assert request["body"]["alert.id"] in {alert["alert.id"] for alert in indexed}
