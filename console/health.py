"""What the health page shows: consumer lag per stage, the dead-letter topic (count, newest
records, re-submit) and each forwarding destination's state and backlog.

Kafka is read with kafka-python, which blocks: the pages call these functions in a worker
thread. Nothing here joins a consumer group (offsets are read, never committed).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient
from kafka.structs import TopicPartition

from socpipe.core.config import Config, KafkaConfig
from socpipe.forwarding.status import read_status

log = logging.getLogger(__name__)
DEADLETTERS_SHOWN = 50
MAX_RECORD_CHARS = 64 * 1024
TIMEOUTS = {"request_timeout_ms": 10_000}


@dataclass(frozen=True)
class GroupLag:
    name: str
    group: str
    topic: str
    lag: int | None
    error: str = ""


@dataclass(frozen=True)
class DeadLetter:
    partition: int
    offset: int
    timestamp: float
    stage: str
    reason: str
    topic: str
    record: str

    @property
    def position(self) -> str:
        return f"{self.partition}:{self.offset}"


@dataclass(frozen=True)
class DestinationHealth:
    name: str
    type: str
    up: bool
    breaker: str
    last_success: float | None
    last_failure: float | None
    last_error: str
    backlog: int | None


@dataclass
class Health:
    lags: list[GroupLag] = field(default_factory=list)
    deadletter_count: int | None = None
    deadletters: list[DeadLetter] = field(default_factory=list)
    destinations: list[DestinationHealth] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _consumer(kafka: KafkaConfig) -> KafkaConsumer:
    return KafkaConsumer(enable_auto_commit=False, **TIMEOUTS, **kafka.client_options())


def _partitions(consumer: KafkaConsumer, topic: str) -> list[TopicPartition]:
    return [TopicPartition(topic, n) for n in sorted(consumer.partitions_for_topic(topic) or ())]


def group_lags(kafka: KafkaConfig, groups: list[tuple[str, str, str]]) -> list[GroupLag]:
    """(display name, group id, topic) -> records of the topic the group has not committed."""
    consumer = _consumer(kafka)
    admin = KafkaAdminClient(**TIMEOUTS, **kafka.client_options())
    try:
        lags = []
        for name, group, topic in groups:
            try:
                partitions = _partitions(consumer, topic)
                ends = consumer.end_offsets(partitions)
                committed = admin.list_consumer_group_offsets(group, partitions=partitions)
                lag = 0
                for partition, end in ends.items():
                    done = committed.get(partition)
                    position = done.offset if done is not None and done.offset >= 0 else 0
                    lag += max(end - position, 0)
                lags.append(GroupLag(name, group, topic, lag))
            except Exception as error:  # one group's failure leaves the others shown
                lags.append(GroupLag(name, group, topic, None, str(error)[:300]))
        return lags
    finally:
        consumer.close()
        admin.close()


def read_deadletters(
    kafka: KafkaConfig, limit: int = DEADLETTERS_SHOWN
) -> tuple[int, list[DeadLetter]]:
    """How many records the dead-letter topic holds, and the newest ``limit`` of them."""
    topic = kafka.topics.deadletter
    consumer = _consumer(kafka)
    try:
        partitions = _partitions(consumer, topic)
        if not partitions:
            return 0, []
        starts = consumer.beginning_offsets(partitions)
        ends = consumer.end_offsets(partitions)
        count = sum(ends[p] - starts[p] for p in partitions)
        consumer.assign(partitions)
        wanted = {}
        for partition in partitions:
            first = max(starts[partition], ends[partition] - limit)
            if first < ends[partition]:
                consumer.seek(partition, first)
                wanted[partition] = ends[partition]
            else:
                consumer.pause(partition)
        records: list[DeadLetter] = []
        deadline = time.monotonic() + 10
        while wanted and time.monotonic() < deadline:
            for partition, batch in consumer.poll(timeout_ms=500).items():
                for message in batch:
                    records.append(_deadletter(message))
                if consumer.position(partition) >= wanted.get(partition, 0):
                    wanted.pop(partition, None)
                    consumer.pause(partition)
        records.sort(key=lambda record: record.timestamp, reverse=True)
        return count, records[:limit]
    finally:
        consumer.close()


def _deadletter(message: Any) -> DeadLetter:
    try:
        document = json.loads(message.value or b"{}")
    except ValueError:
        document = {"reason": "(not a socpipe dead-letter record)", "record": str(message.value)}
    if not isinstance(document, dict):
        document = {"record": str(document)}
    return DeadLetter(
        partition=message.partition,
        offset=message.offset,
        timestamp=message.timestamp / 1000.0,
        stage=str(document.get("stage", "")),
        reason=str(document.get("reason", ""))[:2000],
        topic=str(document.get("topic", "")),
        record=str(document.get("record", ""))[:MAX_RECORD_CHARS],
    )


class ResubmitError(ValueError):
    """A dead letter that cannot be sent back (gone, or from a topic not re-submittable)."""


def resubmit(kafka: KafkaConfig, partition: int, offset: int) -> tuple[str, str]:
    """Send a dead letter's record back to the topic it came from (events or alerts only),
    with its original key; the stages then handle it again. Returns (topic, reason it was
    dead-lettered)."""
    topic = kafka.topics.deadletter
    consumer = _consumer(kafka)
    try:
        target = TopicPartition(topic, partition)
        if target not in _partitions(consumer, topic):
            raise ResubmitError(f"no partition {partition} in {topic}")
        consumer.assign([target])
        consumer.seek(target, offset)
        message = None
        deadline = time.monotonic() + 10
        while message is None and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500, max_records=1).values():
                message = batch[0]
        if message is None or message.offset != offset:
            raise ResubmitError(f"dead letter {partition}:{offset} is no longer in {topic}")
    finally:
        consumer.close()
    letter = _deadletter(message)
    if letter.topic not in (kafka.topics.events, kafka.topics.alerts):
        raise ResubmitError(f"dead letter {partition}:{offset} came from {letter.topic!r}")
    producer = KafkaProducer(acks="all", **TIMEOUTS, **kafka.client_options())
    try:
        producer.send(letter.topic, key=message.key, value=letter.record.encode("utf-8"))
        producer.flush(timeout=10)
    finally:
        producer.close()
    return letter.topic, letter.reason


def read_health(config: Config) -> Health:
    kafka = config.kafka
    health = Health()
    forward = config.forwarding
    groups = [
        ("detect", config.stages.detect_group, kafka.topics.events),
        ("index (events)", config.stages.index_group, kafka.topics.events),
        ("index (alerts)", config.stages.index_group, kafka.topics.alerts),
    ]
    groups += [
        ("index (incidents)", config.stages.index_group, kafka.topics.incidents),
        ("index (forwarding ledger)", config.stages.index_group, kafka.topics.forwarding),
    ]
    groups += [
        (f"forward: {d.name}", f"{forward.group_prefix}{d.name}", kafka.topics.incidents)
        for d in forward.destinations
    ]
    try:
        health.lags = group_lags(kafka, groups)
        health.deadletter_count, health.deadletters = read_deadletters(kafka)
    except Exception as error:
        health.errors.append(f"Kafka at {', '.join(kafka.bootstrap_servers)}: {error}")
    backlog = {lag.group: lag.lag for lag in health.lags}
    for destination in forward.destinations:
        status = read_status(forward.status_dir, destination.name)
        last_success = status.last_success if status else None
        last_failure = status.last_failure if status else None
        breaker = status.breaker if status else "unknown"
        up = (
            status is not None
            and breaker == "closed"
            and (last_failure is None or (last_success or 0) >= last_failure)
        )
        health.destinations.append(
            DestinationHealth(
                name=destination.name,
                type=destination.type,
                up=up,
                breaker=breaker,
                last_success=last_success,
                last_failure=last_failure,
                last_error=status.last_error if status else "no status yet (stage not run?)",
                backlog=backlog.get(f"{forward.group_prefix}{destination.name}"),
            )
        )
    return health
