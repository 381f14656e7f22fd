"""Integration tests run against the real Kafka and Elasticsearch that scripts/services.sh
starts (the README's test command does). Each test gets its own topics, groups and indices."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from elasticsearch import ApiError, Elasticsearch, TransportError
from kafka import KafkaConsumer
from kafka.admin import KafkaAdminClient

from bench.names import isolated
from socpipe.collectors.follow import FileFollower
from socpipe.collectors.parsers import ParseContext
from socpipe.collectors.publisher import EventPublisher, SpooledPublisher
from socpipe.collectors.spool import DiskSpool
from socpipe.collectors.syslog_listener import SyslogListener, SyslogReceiver
from socpipe.core import envelope
from socpipe.core.config import Config, config_document, load_config
from socpipe.core.kafka_clients import ensure_topics
from socpipe.sinks.elasticsearch import connect, install_templates
from tests.conftest import REPO


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything in this folder needs the services: `-m "not integration"` leaves it out."""
    folder = Path(__file__).parent
    for item in items:
        if folder in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


SERVICES_HINT = "start them with: scripts/services.sh up"


@pytest.fixture(scope="session")
def base_config() -> Config:
    # One events topic per test (single mode): the tests publish where they like. The
    # per-agency topics and what they guarantee have tests of their own (test_agency_topics).
    shipped = load_config()
    config = replace(shipped, kafka=replace(shipped.kafka, event_topics="single"))
    try:
        KafkaAdminClient(**config.kafka.client_options(), bootstrap_timeout_ms=10_000).close()
    except Exception as error:
        pytest.fail(
            f"Kafka is not reachable at {config.kafka.bootstrap_servers}: {error}; {SERVICES_HINT}"
        )
    try:
        connect(config.elasticsearch).cluster.health(wait_for_status="yellow", timeout="30s")
    except Exception as error:
        pytest.fail(
            f"Elasticsearch is not reachable at {config.elasticsearch.hosts}: {error}; {SERVICES_HINT}"
        )
    wait_for_group_coordinator(config)
    return config


def wait_for_group_coordinator(config: Config, timeout: float = 300.0) -> None:
    """Wait until a new consumer group can join and be given partitions.

    A broker that has just started answers requests before it coordinates groups (it loads
    ``__consumer_offsets`` first); the daemon of a first test would then sit without
    partitions and the test time out for nothing. One throwaway group joining the pipeline's
    events topic proves what the tests need.
    """
    kafka = replace(config.kafka, event_topics="single")
    ensure_topics(kafka)
    consumer = KafkaConsumer(
        kafka.topics.events,
        group_id=f"socpipe-test-readiness-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        **kafka.client_options(),
    )
    deadline = time.monotonic() + timeout
    try:
        while not consumer.assignment():
            if time.monotonic() > deadline:
                pytest.fail(f"Kafka gave a new consumer group no partitions in {timeout:.0f}s")
            consumer.poll(timeout_ms=500, max_records=1)
    finally:
        consumer.close(autocommit=False)


@pytest.fixture
def config(base_config: Config) -> Iterator[Config]:
    """A configuration whose topics, consumer groups and indices belong to this test alone."""
    tag = "t" + uuid.uuid4().hex[:10]
    names = isolated(base_config, tag, poll_timeout_ms=200)
    config = replace(names, kafka=replace(names.kafka, partitions=2))
    ensure_topics(config.kafka)
    client = connect(config.elasticsearch)
    install_templates(client, config.elasticsearch)
    yield config
    client.indices.delete(index=f"{tag}-*", ignore_unavailable=True)
    client.indices.delete_index_template(name=f"{tag}-*")
    admin = KafkaAdminClient(**config.kafka.client_options())
    topics = config.kafka.topics
    admin.delete_topics(
        [topics.events, topics.alerts, topics.deadletter, topics.incidents, topics.forwarding]
    )
    admin.close()


@pytest.fixture
def es(config: Config) -> Elasticsearch:
    return connect(config.elasticsearch)


def wait_for(check: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    """Poll until ``check`` returns something truthy; fail with ``what`` after ``timeout``.

    Elasticsearch answering 503 (a shard still starting, just after a restart or an index's
    creation) or not answering is "not yet", like a falsy result: the last such error is in
    the failure message.
    """
    deadline = time.monotonic() + timeout
    last_error = ""
    while time.monotonic() < deadline:
        try:
            result = check()
        except (ApiError, TransportError) as error:
            if isinstance(error, ApiError) and error.status_code != 503:
                raise
            last_error = f" (last error: {error})"
        else:
            if result:
                return result
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}{last_error}")


def read_topic(config: Config, topic: str, expected: int, timeout: float = 30.0) -> list[dict]:
    """Read a topic from the start until ``expected`` documents arrived (or time runs out);
    envelopes of several events count as their events."""
    consumer = KafkaConsumer(
        topic,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=1000,
        **config.kafka.client_options(),
    )
    records: list[dict] = []
    deadline = time.monotonic() + timeout
    try:
        while len(records) < expected and time.monotonic() < deadline:
            records.extend(
                envelope.decode(line)
                for message in consumer
                for _, line in envelope.unpack(message.value)
            )
    finally:
        consumer.close()
    return records


@dataclass
class Collectors:
    address: tuple[str, int]
    spool: DiskSpool


@contextmanager
def running_collectors(
    config: Config, folder: Path, pattern: str, context: ParseContext
) -> Iterator[Collectors]:
    """A syslog TCP listener (journaled) and a file follower, as threads, for one test."""
    stop = threading.Event()
    spool = DiskSpool(folder / "spool")
    listener = SyslogListener(
        SyslogReceiver(SpooledPublisher(config.kafka, "syslog", spool), context)
    )
    address = listener.add_tcp("127.0.0.1:0")
    follower = FileFollower(
        [pattern],
        folder / "state.json",
        EventPublisher(config.kafka, "file"),
        context,
        poll_interval=0.2,
    )
    threads = [
        threading.Thread(target=listener.run, args=(stop,)),
        threading.Thread(target=follower.run, args=(stop,)),
    ]
    for thread in threads:
        thread.start()
    try:
        yield Collectors(address, spool)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=180)


def start_daemon(config_file: Path, log: Path, *options: str) -> subprocess.Popen:
    """``socpipe run`` as its own process, as in production; output appended to ``log``."""
    with log.open("a") as output:
        return subprocess.Popen(
            [
                sys.executable,
                str(REPO / "pipeline.py"),
                *options,
                "run",
                "--config",
                str(config_file),
            ],
            cwd=REPO,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def write_config(config: Config, path: Path) -> Path:
    """The configuration as a YAML file, for a daemon started as its own process."""
    path.write_text(yaml.safe_dump(config_document(config)))
    return path


def search(es: Elasticsearch, index: str, size: int = 1000) -> list[dict]:
    es.indices.refresh(index=index, ignore_unavailable=True)
    response = es.search(index=index, size=size, ignore_unavailable=True)
    return [hit["_source"] for hit in response["hits"]["hits"]]
