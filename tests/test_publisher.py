"""Publishing without Kafka: nothing connects before it is needed, failures are the caller's
to retry, and the state is logged once per change (the real outage tests are in
tests/integration/test_kafka_unreachable.py)."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka.errors import KafkaError

from socpipe.collectors.publisher import EventPublisher, KafkaHealth, SpooledPublisher
from socpipe.collectors.spool import DiskSpool
from socpipe.core import metrics
from socpipe.core.config import KafkaConfig


@pytest.fixture
def silent_broker() -> Iterator[socket.socket]:
    """A port that accepts connections and never answers: a constructor that connected
    would be seen here (and would wait for it)."""
    server = socket.create_server(("127.0.0.1", 0))
    yield server
    server.close()


def test_constructing_publishers_connects_to_nothing(
    silent_broker: socket.socket, tmp_path: Path
) -> None:
    config = KafkaConfig(bootstrap_servers=[f"127.0.0.1:{silent_broker.getsockname()[1]}"])
    EventPublisher(config, "file")
    SpooledPublisher(config, "syslog", DiskSpool(tmp_path))
    # A connection made in a constructor is complete (queued here) when it returns.
    silent_broker.setblocking(False)
    with pytest.raises(BlockingIOError):
        silent_broker.accept()


def test_nothing_to_send_needs_no_kafka() -> None:
    publisher = EventPublisher(KafkaConfig(bootstrap_servers=["127.0.0.1:9"]), "file")
    assert publisher.confirm() == 0


def test_events_while_kafka_is_away_fail_for_the_caller_to_retry() -> None:
    publisher = EventPublisher(KafkaConfig(bootstrap_servers=["127.0.0.1:9"]), "file")
    publisher.publish({"event.original": "x", "host.name": "web01"})
    with pytest.raises(KafkaError, match=r"no bootstrap server reachable: 127\.0\.0\.1:9"):
        publisher.confirm()


def test_the_syslog_journal_keeps_events_while_kafka_is_away(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path)
    publisher = SpooledPublisher(KafkaConfig(bootstrap_servers=["127.0.0.1:9"]), "syslog", spool)
    publisher.publish({"event.original": "x", "host.name": "web01"})
    stop = threading.Event()
    stop.set()  # one attempt, then stop
    publisher.drain(stop)
    assert publisher.health.up is False
    assert [value for _, value in spool.read_batch(10, timeout=0.01)[0]] != []


def test_kafka_state_is_logged_once_per_change(caplog: pytest.LogCaptureFixture) -> None:
    health = KafkaHealth("syslog")
    gauge = metrics.KAFKA_REACHABLE.labels("syslog")
    with caplog.at_level(logging.INFO):
        health.succeeded(0)
        for backlog in (10, 20, 30):
            health.failed(KafkaError("down"), backlog)
        assert gauge._value.get() == 0
        for backlog in (30, 0):
            health.succeeded(backlog)
    messages = [record.getMessage() for record in caplog.records]
    assert messages[0] == "kafka connected collector=syslog"
    assert messages[1].startswith("kafka unreachable collector=syslog")
    assert "backlog_bytes=10" in messages[1]
    assert messages[2].startswith("kafka reachable again collector=syslog after")
    assert "backlog_bytes=30" in messages[2]
    assert len(messages) == 3
    assert gauge._value.get() == 1
