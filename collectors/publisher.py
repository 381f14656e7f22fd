"""Sends normalized events to the events topic, keyed by agency and host so that one host's
events stay in order on one partition, several events per record (core/envelope.py)."""

from __future__ import annotations

import logging
import threading
import time
from typing import Protocol

from kafka import KafkaProducer
from kafka.errors import KafkaError

from socpipe.collectors.spool import DiskSpool
from socpipe.core import envelope, metrics
from socpipe.core.config import KafkaConfig
from socpipe.core.envelope import EnvelopePacker
from socpipe.core.event import Event
from socpipe.core.kafka_clients import make_producer

log = logging.getLogger(__name__)


class _Counters:
    """A collector's per-event counters, resolved once: looking up a labelled metric costs
    more than the rest of counting (about 6 µs per event)."""

    def __init__(self, collector: str) -> None:
        self.collected = metrics.COLLECTED.labels(collector)
        self.unparsed = metrics.UNPARSED.labels(collector)
        self.buffered = metrics.BUFFERED_BYTES.labels(collector)

    def count(self, event: Event) -> None:
        self.collected.inc()
        if "socpipe_unparsed" in event.get("tags", ()):
            self.unparsed.inc()


def event_key(event: Event) -> bytes:
    return f"{event.get('organization.id', 'unknown')}/{event.get('host.name', '-')}".encode()


class Publisher(Protocol):
    """Where a collector hands its events: ``confirm`` returns once they are durable."""

    def publish(self, event: Event) -> None: ...

    def confirm(self) -> int: ...


class EventPublisher:
    def __init__(
        self, config: KafkaConfig, collector: str, producer: KafkaProducer | None = None
    ) -> None:
        self.topic = config.topics.events
        self.collector = collector
        self._counters = _Counters(collector)
        self.producer = producer or make_producer(config)
        self._packer = EnvelopePacker()
        self._pending: list = []
        self._lock = threading.Lock()  # listeners publish from several connection threads

    def publish(self, event: Event) -> None:
        """Queue an event; it is sent with its envelope, at the latest on ``confirm``."""
        key = event_key(event)
        with self._lock:
            full = self._packer.add(key, envelope.encode(event))
            if full is not None:
                try:
                    self._pending.append(self.producer.send(self.topic, key=key, value=full))
                except KafkaError:
                    # The caller re-reads from its last confirmed position: what is queued
                    # here would be sent twice.
                    self._packer.drain()
                    self._pending.clear()
                    raise
        self._counters.count(event)

    def confirm(self) -> int:
        """Send what is queued and block until Kafka acknowledged all of it; raises if a send
        failed. Returns how many envelopes were acknowledged."""
        with self._lock:
            for key, value in self._packer.drain():
                self._pending.append(self.producer.send(self.topic, key=key, value=value))
            pending, self._pending = self._pending, []
        self.producer.flush()
        for future in pending:
            future.get()
        return len(pending)

    def close(self) -> None:
        self.confirm()
        self.producer.close()


class SpooledPublisher:
    """Publishes through the on-disk journal: for sources that cannot replay (syslog)."""

    def __init__(
        self,
        config: KafkaConfig,
        collector: str,
        spool: DiskSpool,
        producer: KafkaProducer | None = None,
    ) -> None:
        self.topic = config.topics.events
        self.collector = collector
        self.spool = spool
        self._counters = _Counters(collector)
        self.producer = producer or make_producer(config)
        self._last_warning = 0.0

    def publish(self, event: Event) -> None:
        self.spool.append(event_key(event), envelope.encode(event))
        self._counters.count(event)
        self._counters.buffered.set(self.spool.buffered_bytes)

    def drain_once(self, max_records: int = 5000) -> int:
        """Send the oldest journaled events, packed per key; remove them from the journal once
        Kafka acknowledged them all."""
        records, position = self.spool.read_batch(max_records)
        if not records:
            return 0
        packer = EnvelopePacker()
        envelopes = [(key, full) for key, line in records if (full := packer.add(key, line))]
        futures = [
            self.producer.send(self.topic, key=key, value=value)
            for key, value in envelopes + packer.drain()
        ]
        self.producer.flush()
        for future in futures:
            future.get()
        self.spool.commit(position, records)
        self._counters.buffered.set(self.spool.buffered_bytes)
        return len(records)

    def drain(self, stop: threading.Event, retry_secs: float = 2.0) -> None:
        """Send until ``stop``; while Kafka is unreachable keep the journal and say how much."""
        while True:
            try:
                sent = self.drain_once()
            except KafkaError as error:
                now = time.monotonic()
                if now - self._last_warning > 30:
                    log.warning(
                        "kafka unreachable, buffering on disk"
                        " collector=%s buffered_bytes=%d reason=%s",
                        self.collector,
                        self.spool.buffered_bytes,
                        error,
                    )
                    self._last_warning = now
                if stop.wait(retry_secs):
                    return
                continue
            if stop.is_set() and not sent:
                return

    def close(self) -> None:
        self.spool.sync()
        self.producer.close()
