"""Sends normalized events to the events topic, keyed by agency and host so that one host's
events stay in order on one partition, several events per record (core/envelope.py).

A collector starts and keeps running while Kafka is away: the producer is made on first use
(a kafka-python producer connects in its constructor), and every failure is one the caller
retries from its own durable buffer: the followed files' confirmed positions, or the syslog
journal. The state is logged once per change (Kafka away with the backlog, back with the
backlog and how long it was away), not once per retry.
"""

from __future__ import annotations

import gc
import logging
import socket
import threading
import time
from typing import Protocol

from kafka import KafkaProducer
from kafka.errors import KafkaConnectionError, KafkaError

from socpipe.collectors.spool import DiskSpool, JournalFull
from socpipe.core import envelope, metrics
from socpipe.core.config import KafkaConfig
from socpipe.core.envelope import EnvelopePacker
from socpipe.core.event import Event
from socpipe.core.kafka_clients import make_producer

log = logging.getLogger(__name__)

#: How long making a producer may wait for Kafka before the attempt counts as failed.
BOOTSTRAP_TIMEOUT_MS = 10_000
#: How long a TCP connection to a bootstrap server may take in the reachability check.
PROBE_TIMEOUT_SECS = 2.0


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


class KafkaHealth:
    """A collector's view of Kafka, logged once per change and kept in the metric
    ``socpipe_collector_kafka_up``."""

    def __init__(self, collector: str) -> None:
        self.collector = collector
        self.up: bool | None = None
        self._since = time.monotonic()
        self._gauge = metrics.KAFKA_REACHABLE.labels(collector)

    def failed(self, error: Exception, backlog_bytes: int) -> None:
        if self.up is not False:
            log.warning(
                "kafka unreachable collector=%s: buffering until it returns"
                " backlog_bytes=%d reason=%s",
                self.collector,
                backlog_bytes,
                error,
            )
            self.up = False
            self._since = time.monotonic()
            self._gauge.set(0)

    def succeeded(self, backlog_bytes: int) -> None:
        if self.up is False:
            log.warning(
                "kafka reachable again collector=%s after %.0f s; sending the backlog"
                " backlog_bytes=%d",
                self.collector,
                time.monotonic() - self._since,
                backlog_bytes,
            )
        elif self.up is None:
            log.info("kafka connected collector=%s", self.collector)
        if not self.up:
            self.up = True
            self._gauge.set(1)


class LazyProducer:
    """A Kafka producer made when first needed, and made again after a failed attempt."""

    def __init__(self, config: KafkaConfig, producer: KafkaProducer | None = None) -> None:
        self.config = config
        self._producer = producer

    def get(self) -> KafkaProducer:
        """The producer; ``KafkaError`` while no broker can be reached."""
        if self._producer is None:
            if not _any_reachable(self.config.bootstrap_servers):
                raise KafkaConnectionError(
                    f"no bootstrap server reachable: {', '.join(self.config.bootstrap_servers)}"
                )
            try:
                self._producer = make_producer(self.config, BOOTSTRAP_TIMEOUT_MS)
            except KafkaError:
                # A failed kafka-python constructor leaves reference cycles that hold its
                # sockets open; collecting them now keeps retries from leaking descriptors.
                gc.collect()
                raise
        return self._producer

    @property
    def made(self) -> bool:
        return self._producer is not None

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close()
            self._producer = None


def _any_reachable(servers: list[str]) -> bool:
    for server in servers:
        host, _, port = server.rpartition(":")
        try:
            socket.create_connection((host.strip("[]"), int(port)), PROBE_TIMEOUT_SECS).close()
        except (OSError, ValueError):
            continue
        return True
    return False


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
        self.producer = LazyProducer(config, producer)
        self._packer = EnvelopePacker()
        self._pending: list = []
        self._lock = threading.Lock()

    def publish(self, event: Event) -> None:
        """Queue an event; it is sent with its envelope, at the latest on ``confirm``."""
        key = event_key(event)
        with self._lock:
            full = self._packer.add(key, envelope.encode(event))
            if full is not None:
                try:
                    self._pending.append(self.producer.get().send(self.topic, key=key, value=full))
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
            envelopes = self._packer.drain()
            try:
                for key, value in envelopes:
                    self._pending.append(self.producer.get().send(self.topic, key=key, value=value))
            finally:
                pending, self._pending = self._pending, []
        if not pending:
            return 0
        self.producer.get().flush()
        for future in pending:
            future.get()
        return len(pending)

    def close(self) -> None:
        """Send what is queued; if Kafka is away, the lines are read again at the next start
        (their positions were not saved)."""
        try:
            self.confirm()
        except KafkaError as error:
            log.warning("kafka unreachable at stop collector=%s: %s", self.collector, error)
        finally:
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
        self.producer = LazyProducer(config, producer)
        self.health = KafkaHealth(collector)
        self._commit_failing = False

    def publish(self, event: Event) -> None:
        """Journal an event at once: ``JournalFull`` or ``JournalWriteError`` (both
        ``JournalUnavailable``) if it cannot be, and the event stays with the caller."""
        if not self.spool.append(event_key(event), envelope.encode(event), timeout=0):
            raise JournalFull(
                f"journal full ({self.spool.buffered_bytes} bytes awaiting Kafka)",
                str(self.spool.directory),
            )
        self._counters.count(event)
        self._counters.buffered.set(self.spool.buffered_bytes)

    def drain_once(self, max_records: int = 5000) -> int:
        """Send the oldest journaled events, packed per key; remove them from the journal once
        Kafka acknowledged them all."""
        records, position = self.spool.read_batch(max_records)
        if not records:
            if position != self.spool.read_position:
                self.spool.commit(position)  # damage skipped, nothing to send
            return 0
        producer = self.producer.get()
        packer = EnvelopePacker()
        envelopes = [(key, full) for key, line in records if (full := packer.add(key, line))]
        futures = [
            producer.send(self.topic, key=key, value=value)
            for key, value in envelopes + packer.drain()
        ]
        producer.flush()
        for future in futures:
            future.get()
        self.spool.commit(position)
        self._counters.buffered.set(self.spool.buffered_bytes)
        return len(records)

    def drain(self, stop: threading.Event, retry_secs: float = 2.0) -> None:
        """Send until ``stop``; while Kafka is unreachable keep the journal."""
        while True:
            try:
                sent = self.drain_once()
            except KafkaError as error:
                self.health.failed(error, self.spool.buffered_bytes)
                if stop.wait(retry_secs):
                    return
                continue
            except OSError as error:
                # The records went to Kafka but their position could not be saved: they
                # are sent again (with their ids, so they are indexed once).
                if not self._commit_failing:
                    log.error("journal: cannot save the read position: %s", error)
                    self._commit_failing = True
                if stop.wait(retry_secs):
                    return
                continue
            self._commit_failing = False
            if sent:
                self.health.succeeded(self.spool.buffered_bytes)
            if stop.is_set() and not sent:
                return

    def close(self) -> None:
        self.spool.sync()
        self.spool.close()
        self.producer.close()
