"""Several daemon processes side by side share the partitions and index everything once."""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path

from elasticsearch import Elasticsearch

from socpipe.core.config import Config
from socpipe.core.kafka_clients import make_producer
from tests.integration.conftest import start_daemon, wait_for, write_config

EVENTS = 20_000


def test_two_daemons_share_partitions_and_index_everything_once(
    config: Config, es: Elasticsearch, tmp_path: Path
) -> None:
    producer = make_producer(config.kafka)
    for number in range(EVENTS):
        event = {
            "@timestamp": "2026-03-03T10:00:00.000Z",
            "event.id": f"scale-{number}",
            "event.original": str(number),
            "host.name": f"h{number % 20}",
        }
        producer.send(
            config.kafka.topics.events,
            key=f"a/h{number % 20}".encode(),
            value=json.dumps(event).encode(),
        )
    producer.flush()
    producer.close()
    config_file = write_config(config, tmp_path / "socpipe.yml")
    logs = [tmp_path / "first.log", tmp_path / "second.log"]
    daemons = [start_daemon(config_file, log, "-v") for log in logs]
    index = f"{config.elasticsearch.events_index_prefix}*"

    def indexed() -> int:
        es.indices.refresh(index=index, ignore_unavailable=True)
        return es.count(index=index, ignore_unavailable=True)["count"]

    def final_assignments() -> list[set[str]]:
        found = []
        for log in logs:
            lines = re.findall(
                rf"group={re.escape(config.stages.index_group)} assigned partitions=(\S+)",
                log.read_text(),
            )
            found.append(
                {
                    name
                    for name in lines[-1].split(",")
                    if name.startswith(config.kafka.topics.events)
                }
                if lines
                else set()
            )
        return found

    try:
        wait_for(
            lambda: indexed() == EVENTS, timeout=240, what=f"{EVENTS} events indexed by two daemons"
        )
        wait_for(
            lambda: all(final_assignments()),
            timeout=60,
            what="both daemons to hold an events partition",
        )
        # While both run: once one is stopped, the other is given everything it held.
        first, second = final_assignments()
    finally:
        for daemon in daemons:
            daemon.send_signal(signal.SIGTERM)
        codes = [daemon.wait(timeout=60) for daemon in daemons]
    assert codes == [0, 0]
    assert first.isdisjoint(second)
    assert first | second == {
        f"{config.kafka.topics.events}/{p}" for p in range(config.kafka.partitions)
    }
    assert indexed() == EVENTS
