"""The daemon's stages. Each consumes a batch, writes its output durably, and only then lets
the runner commit the batch's offsets: at-least-once, with deterministic ids downstream so a
replay is harmless."""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord

from collectors import envelope
from daemon import metrics
from daemon.config import Config
from detectors.correlation import CorrelationStats
from detectors.detection import Detector
from detectors.suppression import Suppressor, iso
from sinks.elasticsearch import Document, ElasticsearchSink, events_index

log = logging.getLogger(__name__)


class RetryLater(Exception):
    """The stage's output is unavailable for now: the runner hands the batch back (uncommitted)
    and tries again after a pause, without a stack trace in the log."""


def deadletter_value(
    stage: str, record: ConsumerRecord, reason: str, line: bytes | None = None, position: int = 0
) -> bytes:
    """The dead-letter record: the refused event (one line of an envelope, or the whole record)
    with where it came from, so an operator can find, fix and replay it."""
    if line is None:
        line = record.value if isinstance(record.value, bytes) else bytes(record.value or b"")
    return json.dumps(
        {
            "stage": stage,
            "reason": reason,
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "position": position,
            "record": line.decode("utf-8", "backslashreplace"),
        }
    ).encode()


class Stage(ABC):
    name: str

    def __init__(self, config: Config, producer: KafkaProducer) -> None:
        self.config = config
        self.producer = producer
        self._sent: list[Any] = []

    def send(self, topic: str, key: bytes | None, value: bytes) -> None:
        self._sent.append(self.producer.send(topic, key=key, value=value))

    def confirm_sent(self) -> int:
        """Wait until Kafka acknowledged everything this batch produced; raise if it did not."""
        self.producer.flush()
        sent, self._sent = self._sent, []
        for future in sent:
            future.get()
        return len(sent)

    @property
    @abstractmethod
    def topics(self) -> list[str]: ...

    @property
    @abstractmethod
    def group(self) -> str: ...

    @abstractmethod
    def process(self, records: list[ConsumerRecord]) -> None:
        """Handle a batch; return only once its output is durably written."""

    @property
    def state_horizon_secs(self) -> float:
        """How far back a partition's history shapes this stage's state: that much is re-read
        when the stage takes over a partition (daemon/replay.py). 0: the stage keeps none."""
        return 0.0

    def replay(self, records: list[ConsumerRecord]) -> None:
        """Rebuild state from records handled before (by this process or another); write
        nothing. Only stages with a state horizon are given any."""
        raise NotImplementedError(f"stage {self.name} keeps no state to rebuild")

    def deadletter(
        self, record: ConsumerRecord, reason: str, line: bytes | None = None, position: int = 0
    ) -> None:
        log.warning(
            "dead-letter stage=%s topic=%s offset=%s position=%d reason=%s",
            self.name,
            record.topic,
            record.offset,
            position,
            reason,
        )
        self.send(
            self.config.kafka.topics.deadletter,
            record.key,
            deadletter_value(self.name, record, reason, line, position),
        )
        metrics.DEADLETTERED.labels(self.name).inc()


class DetectStage(Stage):
    """Events -> Sigma rules, correlations and anomaly models -> alerts on the alerts topic.

    Correlation and anomaly state lives in this process's memory (docs/correlation.md says
    what that means for partitioning and restarts).
    """

    name = "detect"

    def __init__(
        self,
        config: Config,
        producer: KafkaProducer,
        detector: Detector,
        suppressor: Suppressor | None = None,
    ) -> None:
        super().__init__(config, producer)
        self.detector = detector
        #: Analysts' suppressions (daemon/suppression_feed.py keeps them fresh): a suppressed
        #: alert is counted there instead of sent.
        self.suppressor = suppressor
        self._reported = CorrelationStats()

    @property
    def topics(self) -> list[str]:
        return [self.config.kafka.topics.events]

    @property
    def group(self) -> str:
        return self.config.stages.detect_group

    @property
    def state_horizon_secs(self) -> float:
        configured = self.config.stages.state_replay_secs
        return self.detector.state_horizon_secs if configured is None else configured

    def replay(self, records: list[ConsumerRecord]) -> None:
        """Their alerts and dead letters went out when they were first handled: only the
        windows see them now."""
        events = 0
        for record in records:
            for _, line in envelope.unpack(record.value):
                try:
                    self.detector.replay(envelope.decode(line))
                except Exception:  # dead-lettered when first handled
                    continue
                events += 1
        metrics.REPLAYED.labels(self.name).inc(events)

    def process(self, records: list[ConsumerRecord]) -> None:
        alerts = events = 0
        for record in records:
            for position, line in envelope.unpack(record.value):
                events += 1
                try:
                    event = envelope.decode(line)
                except ValueError as error:
                    self.deadletter(record, str(error), line, position)
                    continue
                try:
                    found = self.detector.process(event)
                except Exception as error:  # one malformed event must not stall the stream
                    reason = f"detection failed: {type(error).__name__}: {error}"
                    self.deadletter(record, reason, line, position)
                    continue
                if found and self.suppressor is not None:
                    kept = self.suppressor.filter(found)
                    if len(kept) != len(found):
                        passed = {id(alert) for alert in kept}
                        for alert in found:
                            if id(alert) not in passed:
                                metrics.SUPPRESSED.labels(alert.rule.id).inc()
                    found = kept
                for alert in found:
                    metrics.ALERTS.labels(alert.rule.id, alert.rule.level).inc()
                    document = alert.to_dict()
                    # When it was raised, beside the event time: the console shows both.
                    document["alert.detected"] = iso(datetime.now(UTC))
                    value = envelope.encode(document)
                    self.send(self.config.kafka.topics.alerts, alert.id.encode(), value)
                    alerts += 1
        # Raises if Kafka did not take an alert: the runner then does not commit the batch.
        self.confirm_sent()
        metrics.EVENTS_IN.labels(self.name).inc(events)
        metrics.RECORDS_OUT.labels(self.name).inc(alerts)
        self._report_correlation_state()

    def _report_correlation_state(self) -> None:
        correlations = self.detector.correlations
        metrics.CORRELATION_GROUPS.set(correlations.group_count)
        now, before = correlations.stats, self._reported
        for reason in ("late", "future", "missing_group_field", "groups_evicted"):
            if delta := getattr(now, reason) - getattr(before, reason):
                metrics.CORRELATION_LOST.labels(reason).inc(delta)
        self._reported = replace(now)


def _position_id(record: ConsumerRecord, position: int) -> str:
    """An id for events from other producers that carry none: their Kafka position is as
    stable as a content id (a replay reads the same record)."""
    suffix = f"-{position}" if position else ""
    return f"{record.topic}-{record.partition}-{record.offset}{suffix}"


class IndexStage(Stage):
    """Events and alerts -> Elasticsearch (events in daily indices, alerts in one index)."""

    name = "index"

    def __init__(self, config: Config, producer: KafkaProducer, sink: ElasticsearchSink) -> None:
        super().__init__(config, producer)
        self.sink = sink

    @property
    def topics(self) -> list[str]:
        return [self.config.kafka.topics.events, self.config.kafka.topics.alerts]

    @property
    def group(self) -> str:
        return self.config.stages.index_group

    def _document(self, record: ConsumerRecord, position: int, line: bytes) -> Document:
        """The document for one line; its JSON goes to Elasticsearch as it came (decoding is
        only for the id, the index and validation: re-encoding would cost as much again)."""
        body = envelope.decode(line)
        settings = self.config.elasticsearch
        if record.topic == self.config.kafka.topics.alerts:
            return Document(settings.alerts_index, str(body["alert.id"]), line)
        identifier = body.get("event.id") or _position_id(record, position)
        return Document(events_index(settings, str(body["@timestamp"])), str(identifier), line)

    def process(self, records: list[ConsumerRecord]) -> None:
        documents: list[Document] = []
        origin: dict[int, tuple[ConsumerRecord, int]] = {}
        lines = 0
        for record in records:
            for position, line in envelope.unpack(record.value):
                lines += 1
                try:
                    document = self._document(record, position, line)
                except (ValueError, KeyError) as error:
                    self.deadletter(record, f"cannot index: {error}", line, position)
                    continue
                origin[id(document)] = (record, position)
                documents.append(document)
        result = self.sink.write(documents)
        for document, reason in result.rejected:
            record, position = origin[id(document)]
            self.deadletter(record, f"elasticsearch refused: {reason}", document.source, position)
        self.confirm_sent()
        metrics.EVENTS_IN.labels(self.name).inc(lines)
        metrics.RECORDS_OUT.labels(self.name).inc(result.created)
        metrics.ES_DUPLICATES.inc(result.already_present)
        metrics.ES_REJECTED.inc(len(result.rejected))
