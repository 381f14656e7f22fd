"""The daemon's own stages: detect (events -> alerts) and index (events and alerts ->
Elasticsearch). The stage contract (durable output before commit) is in socpipe.core.stage."""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from datetime import UTC, datetime

from kafka import KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord

from socpipe.core import envelope, metrics
from socpipe.core.config import Config
from socpipe.core.stage import Stage
from socpipe.daemon.identity import AgencyGuard
from socpipe.detectors.correlation import CorrelationStats
from socpipe.detectors.detection import Detector
from socpipe.detectors.suppression import Suppressor, iso
from socpipe.sinks.elasticsearch import Document, ElasticsearchSink, events_index

log = logging.getLogger(__name__)


class DetectStage(Stage):
    """Events -> Sigma rules, correlations and anomaly models -> alerts on the alerts topic.

    Correlation and anomaly state lives in this process's memory (docs/correlation.md says
    what that means for partitioning and restarts). With per-agency topics it reads every
    agency's topic, and each event's agency is its topic's (daemon/identity.py).
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
        self.guard = AgencyGuard(config.kafka, self.name)
        #: Analysts' suppressions (daemon/suppression_feed.py keeps them fresh): a suppressed
        #: alert is counted there instead of sent.
        self.suppressor = suppressor
        self._reported = CorrelationStats()

    @property
    def topics(self) -> list[str]:
        return [] if self.config.kafka.per_agency else [self.config.kafka.topics.events]

    @property
    def pattern(self) -> str | None:
        return self.config.kafka.events_pattern()

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
                    event = envelope.decode(line)
                    self.guard.enforce(record.topic, event)
                    self.detector.replay(event)
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
                self.guard.enforce(record.topic, event)
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
        metrics.CORRELATION_BYTES.set(correlations.state_bytes)
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
        self.guard = AgencyGuard(config.kafka, self.name)

    @property
    def topics(self) -> list[str]:
        kafka = self.config.kafka
        return (
            [kafka.topics.alerts]
            if kafka.per_agency
            else [kafka.topics.events, kafka.topics.alerts]
        )

    @property
    def pattern(self) -> str | None:
        events = self.config.kafka.events_pattern()
        return None if events is None else f"{events}|{re.escape(self.config.kafka.topics.alerts)}"

    @property
    def group(self) -> str:
        return self.config.stages.index_group

    def _document(self, record: ConsumerRecord, position: int, line: bytes) -> Document:
        """The document for one line; its JSON goes to Elasticsearch as it came (decoding is
        only for the id, the index and validation: re-encoding would cost as much again),
        unless its agency had to be corrected from its topic."""
        body = envelope.decode(line)
        settings = self.config.elasticsearch
        if record.topic == self.config.kafka.topics.alerts:
            return Document(settings.alerts_index, str(body["alert.id"]), line)
        if self.guard.enforce(record.topic, body):
            line = envelope.encode(body)
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
