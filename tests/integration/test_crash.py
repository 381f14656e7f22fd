"""A daemon killed with SIGKILL in the middle of a stream loses nothing and duplicates nothing."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from elasticsearch import Elasticsearch

from socpipe.core.config import Config
from socpipe.core.kafka_clients import group_caught_up, make_producer
from tests.integration.conftest import start_daemon, wait_for, write_config

EVENTS = 100_000
ATTACK_EVERY = 1_000


def event(number: int) -> dict:
    user = "root" if number % ATTACK_EVERY == 0 else f"staff{number % 50}"
    original = f"Mar  3 10:00:00 web01 sshd[1]: Accepted password for {user} from 203.0.113.{number % 250} port {number % 60000} ssh2"
    return {
        "@timestamp": "2026-03-03T10:00:00.000Z",
        "event.original": original,
        "event.kind": "event",
        "event.module": "system",
        "event.dataset": "system.auth",
        "event.id": f"crash-{number}",
        "event.action": "ssh_login",
        "event.outcome": "success",
        "process.name": "sshd",
        "host.name": "web01",
        "user.name": user,
        "source.ip": f"203.0.113.{number % 250}",
        "organization.id": "so-tttt",
    }


def count(es: Elasticsearch, index: str) -> int:
    es.indices.refresh(index=index, ignore_unavailable=True)
    return es.count(index=index, ignore_unavailable=True)["count"]


def test_sigkill_mid_stream_then_restart_indexes_everything_exactly_once(
    config: Config, es: Elasticsearch, tmp_path: Path
) -> None:
    producer = make_producer(config.kafka)
    for number in range(EVENTS):
        producer.send(
            config.kafka.topics.events,
            key=b"so-tttt/web01",
            value=json.dumps(event(number)).encode(),
        )
    producer.flush()
    producer.close()

    config_file = write_config(config, tmp_path / "socpipe.yml")
    log = tmp_path / "daemon.log"
    events_index = f"{config.elasticsearch.events_index_prefix}*"
    # -v: INFO logs, so a failure shows where the daemon was (printed below on failure).
    daemon = start_daemon(config_file, log, "-v")
    try:
        wait_for(
            lambda: count(es, events_index) >= EVENTS // 10,
            timeout=180,
            what="the daemon to index 10% of the stream",
        )
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(timeout=30)
        killed_at = count(es, events_index)
        assert killed_at < EVENTS, "the stream finished before the kill: the test proves nothing"

        daemon = start_daemon(config_file, log, "-v")
        wait_for(
            lambda: count(es, events_index) >= EVENTS,
            timeout=300,
            what=f"all {EVENTS} events indexed",
        )
        expected_alerts = EVENTS // ATTACK_EVERY
        wait_for(
            lambda: count(es, config.elasticsearch.alerts_index) >= expected_alerts,
            timeout=120,
            what="all alerts",
        )
        # Everything the daemon was given is durably handled once its groups have committed
        # to the end of both topics: a duplicate or extra document would be there by then.
        wait_for(
            lambda: (
                all(
                    group_caught_up(config.kafka, config.stages.index_group, topic)
                    for topic in (config.kafka.topics.events, config.kafka.topics.alerts)
                )
                and group_caught_up(
                    config.kafka, config.stages.detect_group, config.kafka.topics.events
                )
            ),
            timeout=120,
            what="the index and detect groups to commit everything",
        )
        assert count(es, events_index) == EVENTS
        alerts = es.search(
            index=config.elasticsearch.alerts_index,
            size=0,
            aggs={"rules": {"terms": {"field": "rule.name"}}},
        )
        assert alerts["hits"]["total"]["value"] == expected_alerts
        assert [(b["key"], b["doc_count"]) for b in alerts["aggregations"]["rules"]["buckets"]] == [
            ("SSH Login As Root Accepted", expected_alerts)
        ]
    finally:
        daemon.send_signal(signal.SIGTERM)
        exit_code = daemon.wait(timeout=60)
        print(log.read_text()[-6000:])  # pytest shows it when the test fails
        assert exit_code == 0, log.read_text()[-2000:]
