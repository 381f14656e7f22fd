"""The forward stage: one Kafka consumer group per destination on the alerts topic.

A slow or broken destination therefore holds back only its own group. Per alert: the
destination's policy selects it, minimisation strips it, the rate limiter paces it, and
delivery retries it until the destination acknowledges. Offsets are committed (by the runner)
only once every alert of the batch was acknowledged, refused for good (dead-lettered with the
reason) or not selected.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import OrderedDict
from typing import Any

from kafka import KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord

from socpipe.core import envelope, metrics
from socpipe.core.config import Config, DestinationBase, secret_from_env
from socpipe.core.stage import Stage
from socpipe.forwarding.delivery import (
    Backoff,
    CircuitBreaker,
    PermanentError,
    TransientError,
    deliver,
)
from socpipe.forwarding.destinations.base import Destination, build_destination
from socpipe.forwarding.policy import Minimiser, RateLimiter, Selection
from socpipe.forwarding.status import DestinationStatus, write_status

log = logging.getLogger(__name__)
#: Alert ids this process delivered recently: a batch handed back after a partial failure
#: does not send those again (a restart may, which receivers handle by the stable ids).
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

    @property
    def topics(self) -> list[str]:
        return [self.config.kafka.topics.alerts]

    @property
    def group(self) -> str:
        return f"{self.config.forwarding.group_prefix}{self.settings.name}"

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

    def _forward(self, record: ConsumerRecord) -> None:
        label = self.settings.name
        try:
            alert = envelope.decode(record.value or b"")
            alert_id = str(alert["alert.id"])
        except (ValueError, KeyError) as error:
            self.deadletter(record, f"not an alert: {error}")
            return
        if alert_id in self.delivered:
            return
        if (reason := self.selection.refusal(alert)) is not None:
            metrics.FORWARDED.labels(label, "skipped").inc()
            log.debug("forward=%s skip alert=%s: %s", label, alert_id, reason)
            return
        payload = self.minimiser.apply(alert)
        self.limiter.wait()
        try:
            receipt = deliver(
                lambda: self.destination.send(payload),
                self.breaker,
                self.backoff,
                self.settings.retry_budget_secs,
                self.stop.is_set,
                self._retrying,
                sleep=self.stop.wait,
            )
        except PermanentError as error:
            self.deadletter(record, f"{label} refused: {error}")
            metrics.FORWARDED.labels(label, "deadlettered").inc()
            self.status.failed(str(error))
            return
        metrics.FORWARDED.labels(label, "sent").inc()
        metrics.FORWARD_LAST_SUCCESS.labels(label).set(time.time())
        self.status.succeeded()
        log.debug("forward=%s alert=%s delivered: %s", label, alert_id, receipt)
        self.delivered[alert_id] = None
        if len(self.delivered) > REMEMBERED_DELIVERIES:
            self.delivered.popitem(last=False)

    def _retrying(self, error: TransientError) -> None:
        label = self.settings.name
        metrics.FORWARDED.labels(label, "failed").inc()
        metrics.FORWARDED.labels(label, "retried").inc()
        metrics.FORWARD_LAST_FAILURE.labels(label).set(time.time())
        self.status.failed(str(error))
        log.warning("forward=%s delivery failed, will retry: %s", label, error)


def synthetic_alert(province_id: str) -> dict[str, Any]:
    """A clearly-marked test alert for `socpipe forward test`."""
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    return {
        "@timestamp": now,
        "event.kind": "alert",
        "event.severity": 1,
        "alert.id": f"socpipe-test-{int(time.time())}",
        "alert.status": "new",
        "alert.first_seen": now,
        "alert.last_seen": now,
        "rule.id": "socpipe-forward-test",
        "rule.name": "socpipe forwarding test (not an incident)",
        "rule.level": "informational",
        "rule.description": "Synthetic alert sent by `socpipe forward test`; ignore it.",
        "tags": ["socpipe.test"],
        "threat.technique.id": [],
        "threat.tactic.name": [],
        "organization.id": province_id,
        "source.ip": "192.0.2.1",
        "events": [],
    }
