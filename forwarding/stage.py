"""The forward stage: one Kafka consumer group per destination on the incidents topic.

A slow or broken destination therefore holds back only its own group. Per incident update:
the destination's policy says whether it is due (it reached the destination's level, or its
level rose) and whether the destination takes it, minimisation strips it, the rate limiter
paces it, and delivery retries it until the destination acknowledges. Each decision and
outcome goes to the forwarding ledger (forwarding/ledger.py) through Kafka. Offsets are
committed (by the runner) only once every update of the batch was acknowledged, refused for
good (dead-lettered with the reason) or not due, and its ledger records were accepted.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import OrderedDict
from typing import Any

from kafka import KafkaConsumer, KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord
from kafka.structs import OffsetAndMetadata, TopicPartition

from socpipe.core import envelope, metrics
from socpipe.core.config import Config, DestinationBase, secret_from_env
from socpipe.core.errors import ConfigError
from socpipe.core.stage import Stage
from socpipe.forwarding import ledger
from socpipe.forwarding.delivery import (
    Backoff,
    CircuitBreaker,
    PermanentError,
    TransientError,
    UnsendableError,
    deliver,
)
from socpipe.forwarding.destinations.base import Destination, build_destination, delivery_key
from socpipe.forwarding.policy import Minimiser, RateLimiter, Selection
from socpipe.forwarding.start import EARLIEST, commit_metadata, parse_start, start_offsets
from socpipe.forwarding.status import DestinationStatus, write_status

log = logging.getLogger(__name__)
#: Incident levels this process delivered recently: a batch handed back after a partial
#: failure does not send those again (a restart may, which receivers handle by the stable
#: ids).
REMEMBERED_DELIVERIES = 10_000


def hash_key(config: Config) -> bytes | None:
    variable = config.forwarding.hash_key_env
    return secret_from_env(variable).encode() if variable else None


class ForwardStage(Stage):
    def __init__(
        self,
        config: Config,
        producer: KafkaProducer,
        destination_config: DestinationBase,
        stop: threading.Event,
        destination: Destination | None = None,
    ) -> None:
        super().__init__(config, producer)
        self.settings = destination_config
        self.name = f"forward:{destination_config.name}"
        self.stop = stop
        try:
            self.start = parse_start(destination_config.start_from)
        except ConfigError as error:
            raise ConfigError(f"destination {destination_config.name!r}: {error.reason}") from None
        self.destination = destination or build_destination(destination_config, config.forwarding)
        self.selection = Selection(destination_config.policy)
        self.minimiser = Minimiser(destination_config.minimise, hash_key(config))
        self.limiter = RateLimiter(destination_config.policy.max_per_minute, sleep=stop.wait)
        self.breaker = CircuitBreaker(
            destination_config.breaker_failures, destination_config.breaker_reset_secs
        )
        self.backoff = Backoff(
            destination_config.retry_initial_secs,
            destination_config.retry_max_secs,
            random.Random(),
        )
        self.delivered: OrderedDict[str, None] = OrderedDict()
        self.status = DestinationStatus(destination_config.name, destination_config.type)
        self._attempts = 0

    @property
    def topics(self) -> list[str]:
        return [self.config.kafka.topics.incidents]

    @property
    def group(self) -> str:
        return f"{self.config.forwarding.group_prefix}{self.settings.name}"

    @property
    def offset_reset(self) -> str:
        # start_positions places every partition the group never committed; should that
        # ever not happen, "latest" still never resends the retained history.
        return "latest"

    def start_positions(self, consumer: KafkaConsumer, partitions: set[TopicPartition]) -> set:
        """Partitions the destination's group never committed start at ``start_from``
        (forwarding/start.py), committed at once."""
        fresh = sorted(
            (partition for partition in partitions if consumer.committed(partition) is None),
            key=lambda partition: (partition.topic, partition.partition),
        )
        if not fresh:
            return set()
        targets = start_offsets(consumer, fresh, self.start)
        ends = consumer.end_offsets(fresh)
        for partition, offset in targets.items():
            consumer.seek(partition, offset)
        metadata = commit_metadata(self.start)
        consumer.commit(
            {
                partition: OffsetAndMetadata(offset, metadata, -1)
                for partition, offset in targets.items()
            }
        )
        waiting = sum(ends[partition] - offset for partition, offset in targets.items())
        skipped = sum(offset for offset in targets.values())
        report = log.warning if self.start.name == EARLIEST and waiting else log.info
        report(
            "forward=%s new destination: %d partition(s) start from %s; %d incident update(s)"
            " of Kafka's history will be forwarded, %d before that will not"
            " (`socpipe forward start-from` moves it)",
            self.settings.name,
            len(fresh),
            self.start,
            waiting,
            skipped,
        )
        return set(fresh)

    def process(self, records: list[ConsumerRecord]) -> None:
        try:
            for record in records:
                self._forward(record)
            self.confirm_sent()
        finally:
            metrics.FORWARD_BREAKER_OPEN.labels(self.settings.name).set(
                0 if self.breaker.state == "closed" else 1
            )
            self.status.breaker = self.breaker.state
            write_status(self.config.forwarding.status_dir, self.status)

    def _record(self, incident: dict[str, Any], outcome: str, **details: Any) -> None:
        """A ledger record, published with the batch (committed only once Kafka has it)."""
        entry = ledger.ledger_record(
            self.settings.name, self.settings.type, incident, outcome, **details
        )
        key = str(incident["incident.id"]).encode()
        self.send(self.config.kafka.topics.forwarding, key, envelope.encode(entry))

    def _forward(self, record: ConsumerRecord) -> None:
        label = self.settings.name
        try:
            incident = envelope.decode(record.value or b"")
            key = delivery_key(incident)
        except (ValueError, KeyError) as error:
            self.deadletter(record, f"not an incident update: {error!r}")
            return
        if key in self.delivered or not self.selection.due(incident):
            return
        if (reason := self.selection.refusal(incident)) is not None:
            metrics.FORWARDED.labels(label, "skipped").inc()
            log.debug("forward=%s skip incident=%s: %s", label, key, reason)
            self._record(incident, ledger.SKIPPED, reason=reason)
            return
        payload = self.minimiser.apply(incident)
        self.limiter.wait()
        self._attempts = 0
        try:
            receipt = deliver(
                lambda: self._send(payload),
                self.breaker,
                self.backoff,
                self.settings.retry_budget_secs,
                self.stop.is_set,
                self._retrying,
                sleep=self.stop.wait,
            )
        except PermanentError as error:
            outcome = ledger.DEADLETTERED if isinstance(error, UnsendableError) else ledger.REFUSED
            self.deadletter(record, f"{label} refused: {error}")
            metrics.FORWARDED.labels(label, "deadlettered").inc()
            self.status.failed(str(error))
            self._record(incident, outcome, reason=str(error), attempts=self._attempts)
            return
        metrics.FORWARDED.labels(label, "sent").inc()
        metrics.FORWARD_LAST_SUCCESS.labels(label).set(time.time())
        self.status.succeeded()
        log.debug("forward=%s incident=%s delivered: %s", label, key, receipt)
        outcome = ledger.ACKNOWLEDGED if self.destination.acknowledges else ledger.SENT
        self._record(incident, outcome, receipt=str(receipt), attempts=self._attempts)
        self.delivered[key] = None
        if len(self.delivered) > REMEMBERED_DELIVERIES:
            self.delivered.popitem(last=False)

    def _send(self, payload: dict[str, Any]) -> Any:
        self._attempts += 1
        return self.destination.send(payload)

    def _retrying(self, error: TransientError) -> None:
        label = self.settings.name
        metrics.FORWARDED.labels(label, "failed").inc()
        metrics.FORWARDED.labels(label, "retried").inc()
        metrics.FORWARD_LAST_FAILURE.labels(label).set(time.time())
        self.status.failed(str(error))
        log.warning("forward=%s delivery failed, will retry: %s", label, error)


def synthetic_incident(province_id: str) -> dict[str, Any]:
    """A clearly-marked test incident for `socpipe forward test`."""
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    return {
        "@timestamp": now,
        "incident.id": f"socpipe-test-{int(time.time())}",
        "incident.title": "socpipe forwarding test (not an incident)",
        "incident.level": "informational",
        "incident.previous_level": None,
        "event.severity": 1,
        "incident.first_seen": now,
        "incident.last_seen": now,
        "incident.alert_count": 1,
        "incident.alert_ids": [],
        "incident.alerts": [],
        "incident.rule_ids": ["socpipe-forward-test"],
        "incident.rules": [],
        "incident.related_ids": [],
        "rule.id": "socpipe-forward-test",
        "rule.name": "socpipe forwarding test (not an incident)",
        "rule.level": "informational",
        "rule.description": "Synthetic incident sent by `socpipe forward test`; ignore it.",
        "tags": ["socpipe.test"],
        "threat.technique.id": [],
        "threat.tactic.name": [],
        "organization.id": province_id,
        "source.ip": ["192.0.2.1"],
    }
