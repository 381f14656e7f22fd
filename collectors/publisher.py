"""Sends normalized events to the events topic, keyed by agency and host so that one host's
events stay in order on one partition."""

from __future__ import annotations

import json
import logging
import threading

from kafka import KafkaProducer

from collectors.event import Event
from daemon import metrics
from daemon.config import KafkaConfig
from daemon.kafka_io import make_producer

log = logging.getLogger(__name__)


def event_key(event: Event) -> bytes:
    return f"{event.get('organization.id', 'unknown')}/{event.get('host.name', '-')}".encode()


class EventPublisher:
    def __init__(
        self, config: KafkaConfig, collector: str, producer: KafkaProducer | None = None
    ) -> None:
        self.topic = config.topics.events
        self.collector = collector
        self.producer = producer or make_producer(config)
        self._pending: list = []
        self._lock = threading.Lock()  # listeners publish from several connection threads

    def publish(self, event: Event) -> None:
        value = json.dumps(event, ensure_ascii=False).encode("utf-8", "surrogatepass")
        future = self.producer.send(self.topic, key=event_key(event), value=value)
        with self._lock:
            self._pending.append(future)
        metrics.COLLECTED.labels(self.collector).inc()

    def confirm(self) -> int:
        """Block until Kafka acknowledged every published event; raises if one failed."""
        self.producer.flush()
        with self._lock:
            pending, self._pending = self._pending, []
        for future in pending:
            future.get()
        return len(pending)

    def close(self) -> None:
        self.confirm()
        self.producer.close()
