"""The pipeline on secured services (scripts/services.sh up --secure): Kafka over TLS with
SCRAM principals and ACLs, Elasticsearch over TLS with file-realm users and roles.

One end-to-end run (a collector publishing as agency A through its own principal, the daemon
detecting and indexing as itself, the alert in Elasticsearch), and what the services must
refuse: another agency's topic, a reader writing events, clear text, wrong passwords. The
secure services run beside the plain ones on their own ports; this module starts them through
the project's script (which returns at once when they are up) and stops nothing.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from elastic_transport import ConnectionError as TransportConnectionError
from elasticsearch import ApiError, AuthenticationException, AuthorizationException, Elasticsearch
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError, TopicAuthorizationFailedError

from socpipe.collectors.parsers import ParseContext, parse_detected
from socpipe.collectors.publisher import EventPublisher
from socpipe.core.config import Config, load_config
from socpipe.core.kafka_clients import ensure_topics, make_producer
from socpipe.daemon import runner
from socpipe.pipeline import main
from socpipe.sinks.elasticsearch import connect, install_templates
from tests.conftest import REPO
from tests.integration.conftest import search, wait_for

SERVICES = Path(os.environ.get("SOCPIPE_SERVICES_DIR", "/var/lib/socpipe-services"))
SECURE = SERVICES / "secure"
KAFKA_PORT, ES_PORT = 19092, 19200
AGENCY, OTHER = "agency-a", "agency-b"


@pytest.fixture(scope="module")
def secure_services() -> Iterator[Path]:
    """The secure services up (started if needed), their secrets in the environment, and
    the folder of the client configurations the script wrote."""
    subprocess.run(
        ["bash", str(REPO / "scripts" / "services.sh"), "up", "--secure"],
        check=True,
        timeout=900,
        env={**os.environ, "SOCPIPE_SECURE_AGENCIES": f"{AGENCY} {OTHER}"},
    )
    secrets = dict(
        line.split("=", 1)
        for line in (SECURE / "secrets.env").read_text().splitlines()
        if "=" in line
    )
    saved = {name: os.environ.get(name) for name in secrets}
    os.environ.update(secrets)
    yield SECURE / "clients"
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture
def run_tag() -> str:
    return uuid.uuid4().hex[:10]


def client_config(clients: Path, role: str, tag: str) -> Config:
    """A role's configuration, with this run's own index names (under soc-*, where the roles
    apply) and consumer groups (under socpipe-, where the daemon's ACL applies)."""
    config = load_config(clients / f"{role}.yml")
    return replace(
        config,
        elasticsearch=replace(
            config.elasticsearch,
            events_index_prefix=f"soc-t{tag}-events-",
            alerts_index=f"soc-t{tag}-alerts",
            incidents_index=f"soc-t{tag}-incidents",
            forwarding_index=f"soc-t{tag}-forwarding",
            console_index_prefix=f"soc-console-t{tag}-",
        ),
        stages=replace(
            config.stages,
            detect_group=f"socpipe-t{tag}-detect",
            index_group=f"socpipe-t{tag}-index",
            poll_timeout_ms=200,
        ),
    )


@pytest.fixture
def admin(secure_services: Path, run_tag: str) -> Iterator[Config]:
    """`socpipe setup` as the admin: the agencies' topics and this run's templates."""
    config = client_config(secure_services, "admin", run_tag)
    ensure_topics(config.kafka)
    client = connect(config.elasticsearch)
    install_templates(client, config.elasticsearch)
    yield config
    for pattern in (f"soc-t{run_tag}-*", f"soc-console-t{run_tag}-*"):
        client.indices.delete(index=pattern, ignore_unavailable=True)
        client.options(ignore_status=404).indices.delete_index_template(name=pattern)


def root_login(agency: str, host: str, ip: str) -> dict:
    line = f"Mar  3 10:05:44 {host} sshd[2301]: Accepted password for root from {ip} port 5 ssh2"
    context = ParseContext(agency, reference_time=datetime(2026, 3, 10, tzinfo=UTC))
    return parse_detected(line, context)[0]


def test_an_agencys_event_becomes_an_alert_through_tls_and_principals(
    secure_services: Path, admin: Config, run_tag: str
) -> None:
    daemon = client_config(secure_services, "daemon", run_tag)
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(daemon, ["detect", "index"], stop))
    thread.start()
    try:
        host = f"h{run_tag}"
        collector = client_config(secure_services, f"collector-{AGENCY}", run_tag)
        publisher = EventPublisher(collector.kafka.for_collector(AGENCY), "test")
        publisher.publish(root_login(AGENCY, host, "203.0.113.50"))
        publisher.close()
        es = connect(admin.elasticsearch)

        def ours() -> list[dict]:
            found = search(es, admin.elasticsearch.alerts_index)
            return [alert for alert in found if alert.get("host.name") == host]

        [alert] = wait_for(ours, timeout=120, what="the alert in the secure Elasticsearch")
        # The writer role also merges incident updates (read and update, nothing more).
        incidents = admin.elasticsearch.incidents_index
        wait_for(
            lambda: [i for i in search(es, incidents) if i["incident.id"] == alert["incident.id"]],
            timeout=120,
            what="the alert's incident",
        )
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not thread.is_alive()
    assert alert["rule.name"] == "SSH Login As Root Accepted"
    assert alert["organization.id"] == AGENCY
    [event] = [
        event
        for event in search(es, f"{admin.elasticsearch.events_index_prefix}*")
        if event.get("host.name") == host
    ]
    assert event["organization.id"] == AGENCY


def test_a_collector_can_write_only_its_own_agencys_topic(
    secure_services: Path, admin: Config, run_tag: str
) -> None:
    collector = client_config(secure_services, f"collector-{AGENCY}", run_tag)
    producer = make_producer(collector.kafka)
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            producer.send(f"soc.events.{OTHER}", b"{}").get(timeout=30)
        with pytest.raises(TopicAuthorizationFailedError):
            producer.send("soc.alerts", b"{}").get(timeout=30)
    finally:
        producer.close()
    # Nor may the daemon forge an agency's events: it reads them.
    daemon = client_config(secure_services, "daemon", run_tag)
    producer = make_producer(daemon.kafka)
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            producer.send(f"soc.events.{AGENCY}", b"{}").get(timeout=30)
    finally:
        producer.close()


def test_the_console_reads_but_cannot_write_events(
    secure_services: Path, admin: Config, run_tag: str
) -> None:
    console = connect(client_config(secure_services, "console", run_tag).elasticsearch)
    events = f"{admin.elasticsearch.events_index_prefix}2026.03.03"
    with pytest.raises(AuthorizationException):
        console.create(index=events, id="forged", document={"@timestamp": "2026-03-03T10:00:00Z"})
    assert console.search(index=admin.elasticsearch.alerts_index)["hits"]["total"]["value"] >= 0
    # The daemon's writer may add documents to soc-* only, and delete nothing.
    writer = connect(client_config(secure_services, "daemon", run_tag).elasticsearch)
    with pytest.raises(AuthorizationException):
        writer.create(index=f"other-t{run_tag}", id="x", document={"a": 1})
    with pytest.raises(AuthorizationException):
        writer.indices.delete(index=admin.elasticsearch.alerts_index)


def test_clear_text_and_wrong_passwords_are_refused(secure_services: Path, admin: Config) -> None:
    for port in (KAFKA_PORT, ES_PORT):  # listening: what follows is a refusal, not absence
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    with pytest.raises(KafkaError):
        KafkaAdminClient(
            bootstrap_servers=[f"127.0.0.1:{KAFKA_PORT}"], bootstrap_timeout_ms=5000
        ).close()
    with pytest.raises(KafkaError):
        KafkaProducer(
            bootstrap_servers=[f"127.0.0.1:{KAFKA_PORT}"],
            security_protocol="SASL_SSL",
            ssl_cafile=str(SECURE / "ca.crt"),
            sasl_mechanism="SCRAM-SHA-512",
            sasl_plain_username=os.environ["SOCPIPE_SECURE_KAFKA_ADMIN_USER"],
            sasl_plain_password="not-the-password",
            max_block_ms=5000,
        )
    with pytest.raises(TransportConnectionError):
        Elasticsearch(f"http://127.0.0.1:{ES_PORT}", request_timeout=5).info()
    anonymous = Elasticsearch(f"https://127.0.0.1:{ES_PORT}", ca_certs=str(SECURE / "ca.crt"))
    with pytest.raises(AuthenticationException):
        anonymous.info()
    impostor = Elasticsearch(
        f"https://127.0.0.1:{ES_PORT}",
        ca_certs=str(SECURE / "ca.crt"),
        basic_auth=(os.environ["SOCPIPE_SECURE_ES_ADMIN_USER"], "not-the-password"),
    )
    with pytest.raises(ApiError):
        impostor.info()


def test_setup_needs_an_administrator(
    secure_services: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["setup", "--config", str(secure_services / "daemon.yml")]) == 1
    assert "elasticsearch refused: HTTP 403" in capsys.readouterr().err
    collector = str(secure_services / f"collector-{AGENCY}.yml")
    assert main(["setup", "--config", collector, "--agency", "agency-zz"]) == 1
    error = capsys.readouterr().err
    assert "TopicAuthorizationFailedError" in error and "setup needs an administrator" in error
