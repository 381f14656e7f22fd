"""Kafka clients configured the one way socpipe uses them.

Producers: acks=all and idempotence (no loss, no duplicates from retries), large lz4 batches
(gzip at kafka-python's fixed level 9 cost more CPU than the rest of producing).
Consumers: a group id, auto-commit off; stages commit themselves after durable output.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

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


#: How often a pattern subscription looks for new topics (a new agency's): Kafka's default,
#: five minutes, would leave a new agency's first events waiting that long.
PATTERN_METADATA_MAX_AGE_MS = 30_000


def make_consumer(
    config: KafkaConfig,
    group_id: str,
    topics: list[str],
    max_records: int,
    pattern: str | None = None,
    offset_reset: str = "earliest",
) -> tuple[KafkaConsumer, AssignmentListener]:
    """A subscribed consumer, and the listener that tells which partitions it was given.

    ``topics`` must exist before the consumer joins its group; with a ``pattern`` the
    consumer follows every topic whose whole name matches it (the agencies' events topics,
    including those created later) instead of a fixed list, and ``topics`` are only waited
    for (a pattern subscription takes one regex: the caller folds them into it).
    ``offset_reset``: where a partition the group never committed starts (the stage may move
    it when it is assigned: see ``Stage.start_positions``).
    """
    extra = {"metadata_max_age_ms": PATTERN_METADATA_MAX_AGE_MS} if pattern else {}
    consumer = KafkaConsumer(
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset=offset_reset,
        max_poll_records=max_records,
        **extra,
        **config.client_options(),
    )
    if pattern is not None:
        # The agency topics there already are: joining the group with their metadata known
        # gives them partitions at once (see _wait_for_partitions).
        matching = re.compile(pattern)
        topics = [*topics, *(name for name in consumer.topics() if matching.fullmatch(name))]
    _wait_for_partitions(consumer, list(dict.fromkeys(topics)))
    listener = AssignmentListener(group_id, _rejoin_request(consumer))
    if pattern is not None:
        consumer.subscribe(pattern=f"^(?:{pattern})$", listener=listener)
    else:
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

    def __init__(self, group_id: str, rebalancing: Callable[[], None] = lambda: None) -> None:
        self.group_id = group_id
        self._rebalancing = rebalancing
        self._assigned: set[TopicPartition] = set()

    def on_partitions_revoked(self, revoked: list) -> None:
        # Called as every rebalance starts: see _rejoin_request.
        self._rebalancing()
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


def _rejoin_request(consumer: KafkaConsumer) -> Callable[[], None]:
    """What marks the consumer's rebalance as requested, to call when a rebalance starts.

    kafka-python 3.0 starts a rebalance when the metadata of the subscribed topics changes (a
    pattern subscription finding a new agency's topic) without setting its "rejoin needed"
    flag; as group leader it then computes the assignment, after which nothing says a join is
    under way. A ``poll`` that returns before the SyncGroup answer arrives leaves the join
    unfinished for good: the consumer keeps its group membership and its partitions, and
    consumes nothing (seen in tests/integration/test_agency_topics.py about one run in two).
    Setting the flag as the rebalance starts keeps later polls awaiting the join until it
    completes, as they do for every other kind of rebalance. Without that method (another
    kafka-python), nothing is done.
    """
    coordinator = getattr(consumer, "_coordinator", None)
    request = getattr(coordinator, "request_rejoin", None)
    return request if callable(request) else (lambda: None)


def _names(partitions: list) -> str:
    return ",".join(sorted(f"{p.topic}/{p.partition}" for p in partitions)) or "none"


def pipeline_topics(config: KafkaConfig, agencies: list[str] | None = None) -> list[str]:
    """The topics the pipeline needs: alerts, dead letters, incidents, forwarding records, and
    the events topic, or with per-agency topics one for each configured agency and each of
    ``agencies`` (whose ids are checked: a bad one is a ``ConfigError``)."""
    if config.per_agency:
        names = dict.fromkeys([*config.agencies, *(agencies or [])])
        events = [config.events_topic(agency) for agency in names]
    else:
        events = [config.topics.events]
    topics = config.topics
    return [*events, topics.alerts, topics.deadletter, topics.incidents, topics.forwarding]


def ensure_topics(config: KafkaConfig, agencies: list[str] | None = None) -> list[str]:
    """Create the pipeline's topics if missing (see ``pipeline_topics``); returns the ones
    created."""
    wanted = pipeline_topics(config, agencies)
    admin = KafkaAdminClient(**config.client_options())
    existing = set(admin.list_topics())
    created = []
    try:
        for topic in wanted:
            if topic in existing:
                continue
            try:
                admin.create_topics(
                    {
                        topic: {
                            "num_partitions": config.partitions,
                            "replication_factor": config.replication_factor,
                        }
                    },
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
        return committed_to_end(consumer, topic)
    finally:
        consumer.close()


def committed_to_end(consumer: KafkaConsumer, topic: str) -> bool:
    """``group_caught_up`` with a consumer kept for asking often (one of the group's, not
    subscribed): connecting anew costs more than the question."""
    partitions = [TopicPartition(topic, n) for n in consumer.partitions_for_topic(topic) or ()]
    ends = consumer.end_offsets(partitions)
    return all((consumer.committed(partition) or 0) >= end for partition, end in ends.items())
