"""A detect process that takes over a partition rebuilds its correlation windows from the
partition's history (daemon/replay.py): a brute force begun before a restart is completed
after it, and nothing raised before the restart is raised again."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from socpipe.collectors.parsers import ParseContext, parse_detected
from socpipe.collectors.publisher import EventPublisher
from socpipe.core import metrics
from socpipe.core.config import Config
from socpipe.core.kafka_clients import group_caught_up
from socpipe.daemon import runner
from tests.integration.conftest import read_topic, wait_for

CONTEXT = ParseContext(agency_id="so-tttt", reference_time=datetime(2026, 3, 10, tzinfo=UTC))
BRUTE_FORCE = "SSH Brute Force From One Source"
ROOT_LOGIN = "Accepted password for root from 198.51.100.9 port 50022 ssh2"


def publish(config: Config, lines: list[tuple[str, str]]) -> None:
    """(event id, line) pairs, parsed as a collector would and sent to the events topic."""
    publisher = EventPublisher(config.kafka, "test")
    for event_id, line in lines:
        event, _ = parse_detected(line, CONTEXT)
        event["event.id"] = event_id
        publisher.publish(event)
    publisher.close()


def failures(numbers: range) -> list[tuple[str, str]]:
    return [
        (
            f"replay-{number}",
            f"Mar  3 11:00:{number:02d} web01 sshd[2400]: Failed password for oracle from"
            f" 203.0.113.66 port {41000 + number} ssh2",
        )
        for number in numbers
    ]


def everything_committed(config: Config) -> bool:
    return group_caught_up(config.kafka, config.stages.detect_group, config.kafka.topics.events)


@contextmanager
def detect_process(config: Config) -> Iterator[None]:
    """The detect stage as a daemon runs it; leaving the block is SIGTERM (batch committed)."""
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(config, ["detect"], stop))
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not thread.is_alive(), "the detect stage did not stop within 60 s of being asked"


def test_restarted_detect_stage_completes_a_brute_force_begun_before_the_restart(
    config: Config,
) -> None:
    replayed = metrics.REPLAYED.labels("detect")
    # Six of the ten failures the brute-force rule needs, and one alert of its own.
    publish(
        config,
        [*failures(range(6)), ("replay-root", f"Mar  3 11:00:30 web02 sshd[7]: {ROOT_LOGIN}")],
    )
    with detect_process(config):
        wait_for(lambda: everything_committed(config), timeout=120, what="the first run's commit")
    before = read_topic(config, config.kafka.topics.alerts, expected=1)
    assert [alert["rule.name"] for alert in before] == ["SSH Login As Root Accepted"]
    replayed_before = replayed._value.get()

    # A new process: its windows start empty unless it re-reads the partition's history.
    with detect_process(config):
        publish(config, failures(range(6, 12)))
        alerts = wait_for(
            lambda: (
                (found := read_topic(config, config.kafka.topics.alerts, expected=2, timeout=5))
                and BRUTE_FORCE in {alert["rule.name"] for alert in found}
                and found
            ),
            timeout=120,
            what="the brute-force alert after the restart",
        )
        wait_for(lambda: everything_committed(config), timeout=120, what="the second commit")
    alerts = read_topic(config, config.kafka.topics.alerts, expected=len(alerts))
    names = sorted(alert["rule.name"] for alert in alerts)
    # The root login re-read from history is not raised again; the brute force once.
    assert names == [BRUTE_FORCE, "SSH Login As Root Accepted"]
    brute_force = next(alert for alert in alerts if alert["rule.name"] == BRUTE_FORCE)
    assert brute_force["correlation.event_ids"] == [f"replay-{n}" for n in range(10)]
    # The seven events of the first run were re-read, and only those.
    assert replayed._value.get() - replayed_before == 7
