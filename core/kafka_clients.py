"""Kafka clients configured the one way socpipe uses them.

Producers: acks=all and idempotence (no loss, no duplicates from retries), large lz4 batches
(gzip at kafka-python's fixed level 9 cost more CPU than the rest of producing).
Consumers: a group id, auto-commit off; stages commit themselves after durable output.
"""

from __future__ import annotations

import logging
import time

from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient
from kafka.errors import TopicAlreadyExistsError
from kafka.structs import TopicPartition

from socpipe.core.config import KafkaConfig
from socpipe.core.errors import DependencyUnavailable

log = logging.getLogger(__name__)


def make_producer(config: KafkaConfig, bootstrap_timeout_ms: int = 30_000) -> KafkaProducer:
    """A producer; constructing it connects (to learn the broker version) and raises a
    ``KafkaError`` when no broker answers within ``bootstrap_timeout_ms``."""
    return KafkaProducer(
        acks="all",
        enable_idempotence=True,
        compression_type="lz4",
        linger_ms=20,
        batch_size=512 * 1024,
        # Fail fast when Kafka is away: callers then retry from their own durable position.
        max_block_ms=10_000,
        max_request_size=4 * 1024 * 1024,
        bootstrap_timeout_ms=bootstrap_timeout_ms,
        **config.client_options(),
    )


def make_consumer(
    config: KafkaConfig,
    group_id: str,
    topics: list[str],
    max_records: int,
    offset_reset: str = "earliest",
) -> tuple[KafkaConsumer, AssignmentListener]:
    """A subscribed consumer, and the listener that tells which partitions it was given.

    ``offset_reset``: where a partition the group never committed starts (the stage may move
    it when it is assigned: see ``Stage.start_positions``)."""
    consumer = KafkaConsumer(
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset=offset_reset,
        max_poll_records=max_records,
        **config.client_options(),
    )
    _wait_for_partitions(consumer, topics)
    listener = AssignmentListener(group_id)
    consumer.subscribe(topics, listener=listener)
    return consumer, listener


def _wait_for_partitions(
    consumer: KafkaConsumer, topics: list[str], timeout_secs: float = 60
) -> None:
    """Know every topic's partitions before joining the group.

    kafka-python assigns from the metadata it has at join time: a topic still missing there
    (created a moment ago) gets no partitions, and the group was seen not to rebalance for
    minutes after the metadata arrived. Asking first closes that window.
    """
    deadline = time.monotonic() + timeout_secs
    while missing := [topic for topic in topics if not consumer.partitions_for_topic(topic)]:
        if time.monotonic() > deadline:
            consumer.close()
            raise DependencyUnavailable(
                f"Kafka topics not found: {', '.join(missing)} (run `socpipe setup`)"
            )
        time.sleep(0.5)


class AssignmentListener(ConsumerRebalanceListener):
    """Logs which partitions this process holds (how operators see processes sharing work) and
    keeps the newly assigned ones for the stage loop.

    It runs inside ``poll``, on the consumer's own event loop, where blocking consumer calls
    (committed offsets, offsets by time) are not safe: the loop acts on the partitions after
    ``poll`` returns.
    """

    def __init__(self, group_id: str) -> None:
        self.group_id = group_id
        self._assigned: set[TopicPartition] = set()

    def on_partitions_revoked(self, revoked: list) -> None:
        if revoked:
            log.info("group=%s revoked partitions=%s", self.group_id, _names(revoked))
        self._assigned.difference_update(revoked)

    def on_partitions_assigned(self, assigned: list) -> None:
        log.info("group=%s assigned partitions=%s", self.group_id, _names(assigned))
        self._assigned.update(assigned)

    def take_assigned(self) -> set[TopicPartition]:
        """The partitions assigned since the last call."""
        assigned, self._assigned = self._assigned, set()
        return assigned


def _names(partitions: list) -> str:
    return ",".join(sorted(f"{p.topic}/{p.partition}" for p in partitions)) or "none"


def ensure_topics(config: KafkaConfig) -> list[str]:
    """Create the pipeline's topics if missing; returns the ones created."""
    admin = KafkaAdminClient(**config.client_options())
    topics = config.topics
    wanted = [
        topics.events,
        topics.alerts,
        topics.deadletter,
        topics.incidents,
        topics.forwarding,
    ]
    existing = set(admin.list_topics())
    created = []
    try:
        for topic in wanted:
            if topic in existing:
                continue
            try:
                admin.create_topics(
                    {topic: {"num_partitions": config.partitions, "replication_factor": 1}},
                    wait_for_metadata=True,
                )
                created.append(topic)
            except TopicAlreadyExistsError:
                pass  # another process created it between list and create
    finally:
        admin.close()
    return created


def group_caught_up(config: KafkaConfig, group_id: str, topic: str) -> bool:
    """Whether a consumer group has committed every partition of ``topic`` up to its end: all
    it was given is durably handled (stages commit only after their output is written).
    Reads the group's offsets without joining it."""
    consumer = KafkaConsumer(group_id=group_id, enable_auto_commit=False, **config.client_options())
    try:
        partitions = [TopicPartition(topic, n) for n in consumer.partitions_for_topic(topic) or ()]
        ends = consumer.end_offsets(partitions)
        return all((consumer.committed(partition) or 0) >= end for partition, end in ends.items())
    finally:
        consumer.close()
