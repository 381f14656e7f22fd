"""Kafka or Elasticsearch going away for a while loses nothing.

These tests stop and start the shared services with scripts/services.sh, so they run one at a
time (as the whole suite does) and leave the services up.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
from datetime import UTC, datetime
from pathlib import Path

from elasticsearch import Elasticsearch

from socpipe.collectors.parsers import ParseContext
from socpipe.core import metrics
from socpipe.core.config import Config, load_config
from socpipe.core.kafka_clients import make_producer
from socpipe.daemon import runner
from tests.conftest import REPO
from tests.integration.conftest import (
    read_topic,
    running_collectors,
    wait_for,
    wait_for_group_coordinator,
)

CONTEXT = ParseContext(agency_id="so-tttt", reference_time=datetime(2026, 3, 10, tzinfo=UTC))


def services(action: str, name: str) -> None:
    subprocess.run(
        ["bash", str(REPO / "scripts" / "services.sh"), action, name], check=True, timeout=300
    )
    if (action, name) == ("up", "kafka"):
        # The tests after this one join consumer groups.
        wait_for_group_coordinator(load_config())


def syslog_line(number: int) -> str:
    return f"<38>Mar  3 10:00:00 web01 sshd[1]: Failed password for syslog{number} from 10.0.0.1 port 22 ssh2"


def file_line(number: int) -> str:
    return f"Mar  3 10:00:00 web02 sshd[1]: Failed password for file{number} from 10.0.0.2 port 22 ssh2"


def test_kafka_outage_under_running_collectors_loses_nothing(
    config: Config, tmp_path: Path
) -> None:
    log = tmp_path / "app.log"
    log.touch()
    with running_collectors(config, tmp_path, str(log), CONTEXT) as collectors:
        connection = socket.create_connection(collectors.address)

        def send(numbers: range) -> None:
            connection.sendall("".join(syslog_line(n) + "\n" for n in numbers).encode())
            with log.open("a") as handle:
                handle.write("".join(file_line(n) + "\n" for n in numbers))

        spool = collectors.spool
        # What the file collector's log files hold for Kafka (the syslog journal has its own).
        file_waiting = metrics.BUFFERED_BYTES.labels("file")
        try:
            send(range(50))
            wait_for(lambda: spool.buffered_bytes == 0, timeout=60, what="the journal to drain")
            services("down", "kafka")
            try:
                send(range(50, 100))
                wait_for(
                    lambda: spool.buffered_bytes > 0 and file_waiting._value.get() > 0,
                    timeout=30,
                    what="messages buffered on disk while Kafka is down",
                )
            finally:
                services("up", "kafka")
            wait_for(
                lambda: spool.buffered_bytes == 0 and file_waiting._value.get() == 0,
                timeout=180,
                what="the journal and the followed file to drain after Kafka returned",
            )
        finally:
            connection.close()
    records = read_topic(config, config.kafka.topics.events, expected=200, timeout=60)
    users = {record["user.name"] for record in records}
    assert users == {f"syslog{n}" for n in range(100)} | {f"file{n}" for n in range(100)}
    # Re-sent lines keep their ids, so duplicates (if any) collapse downstream.
    assert len({record["event.id"] for record in records}) == 200


def test_elasticsearch_outage_under_running_daemon_catches_up(
    config: Config, es: Elasticsearch
) -> None:
    stop = threading.Event()
    daemon = threading.Thread(target=runner.run, args=(config, ["index"], stop))
    daemon.start()
    producer = make_producer(config.kafka)
    index = f"{config.elasticsearch.events_index_prefix}*"

    def produce(numbers: range) -> None:
        for number in numbers:
            event = {
                "@timestamp": "2026-03-03T10:00:00.000Z",
                "event.id": f"outage-{number}",
                "event.original": str(number),
                "user.name": f"u{number}",
            }
            producer.send(config.kafka.topics.events, value=json.dumps(event).encode())
        producer.flush()

    def indexed() -> int:
        es.indices.refresh(index=index, ignore_unavailable=True)
        return es.count(index=index, ignore_unavailable=True)["count"]

    try:
        produce(range(500))
        wait_for(lambda: indexed() == 500, timeout=60, what="the first 500 events")
        retried = metrics.ES_RETRIED
        before = retried._value.get()
        services("down", "es")
        try:
            produce(range(500, 1000))
            wait_for(
                lambda: retried._value.get() > before,
                timeout=120,
                what="the index stage to meet the outage and retry its writes",
            )
            assert daemon.is_alive()
        finally:
            services("up", "es")
        wait_for(
            lambda: indexed() == 1000,
            timeout=180,
            what="all 1000 events after Elasticsearch returned",
        )
    finally:
        producer.close()
        stop.set()
        daemon.join(timeout=120)
    assert not daemon.is_alive()
