"""The daemon's own stages: detect (events -> alerts and incident updates) and index
(events, alerts, incidents and the forwarding ledger -> Elasticsearch). The stage contract
(durable output before commit) is in socpipe.core.stage."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord

from socpipe.core import envelope, metrics
from socpipe.core.config import Config
from socpipe.core.stage import OverlappingStage, Stage
from socpipe.daemon.identity import AgencyGuard
from socpipe.detectors.alert import Alert
from socpipe.detectors.correlation import CorrelationStats
from socpipe.detectors.detection import Detector
from socpipe.detectors.incidents import IncidentTracker
from socpipe.detectors.suppression import Suppressor, iso
from socpipe.sinks.elasticsearch import DailyIndices, Document, ElasticsearchSink, MergeResult
from socpipe.sinks.incidents import pipeline_fields as incident_fields

log = logging.getLogger(__name__)


class DetectStage(Stage):
    """Events -> Sigma rules, correlations and anomaly models -> alerts on the alerts topic,
    each stamped with its incident, and the incidents that changed on the incidents topic.

    Correlation, anomaly and incident state lives in this process's memory
    (docs/correlation.md says what that means for partitioning and restarts). With per-agency
    topics it reads every agency's topic, and each event's agency is its topic's
    (daemon/identity.py).
    """

    name = "detect"

    def __init__(
        self,
        config: Config,
        producer: KafkaProducer,
        detector: Detector,
        suppressor: Suppressor | None = None,
        incidents: IncidentTracker | None = None,
    ) -> None:
        super().__init__(config, producer)
        self.detector = detector
        self.guard = AgencyGuard(config.kafka, self.name)
        #: Analysts' suppressions (daemon/suppression_feed.py keeps them fresh): a suppressed
        #: alert is counted there instead of sent, and joins no incident.
        self.suppressor = suppressor
        settings = config.stages
        self.incidents = incidents or IncidentTracker(
            window_secs=settings.incident_window_secs,
            lateness_secs=settings.correlation_lateness_secs,
            max_incidents=settings.incident_max_open,
            max_links=settings.incident_max_links,
            max_bytes=settings.incident_max_bytes,
        )
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
        if configured is not None:
            return configured
        return max(self.detector.state_horizon_secs, self.incidents.horizon_secs)

    def replay(self, records: list[ConsumerRecord]) -> None:
        """Their alerts, incident updates and dead letters went out when they were first
        handled: the windows and the incidents see them again, and nothing is sent. Every rule
        runs (not only those correlations count), because incidents are made of alerts."""
        events = 0
        pending = self.incidents.pending_ids()
        for record in records:
            for _, line in envelope.unpack(record.value):
                try:
                    event = envelope.decode(line)
                    self.guard.enforce(record.topic, event)
                    self.incidents.assign(self._unsuppressed(self.detector.process(event)))
                except Exception:  # dead-lettered when first handled
                    continue
                events += 1
        self.incidents.mark_published(keep=pending)
        metrics.REPLAYED.labels(self.name).inc(events)

    def _unsuppressed(self, found: list[Alert]) -> list[Alert]:
        """The alerts no suppression holds back, without counting a hit (a re-read: the hits
        were counted when the events were first handled)."""
        if self.suppressor is None or not found:
            return found
        return [alert for alert in found if not self.suppressor.holds(alert)]

    def process(self, records: list[ConsumerRecord]) -> None:
        alerts = events = 0
        # A batch's alerts go out in envelopes, as events do: one Kafka record per alert cost
        # more than raising it (the index stage reads them line by line either way).
        packer = envelope.EnvelopePacker()
        alerts_topic = self.config.kafka.topics.alerts
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
                if not found:
                    continue
                for alert, incident in zip(found, self.incidents.assign(found), strict=True):
                    metrics.ALERTS.labels(alert.rule.id, alert.rule.level).inc()
                    document = alert.to_dict()
                    document["incident.id"] = incident
                    # When it was raised, beside the event time: the console shows both.
                    document["alert.detected"] = iso(datetime.now(UTC))
                    key = alert.agency.encode()
                    if (full := packer.add(key, envelope.encode(document))) is not None:
                        self.send(alerts_topic, key, full)
                    alerts += 1
        for key, value in packer.drain():
            self.send(alerts_topic, key, value)
        updates = self.incidents.updates()
        for update in updates:
            key = str(update["incident.id"]).encode()
            self.send(self.config.kafka.topics.incidents, key, envelope.encode(update))
        try:
            # Raises if Kafka did not take an alert or an update: the runner then does not
            # commit the batch, and the updates go out again with the retried batch.
            self.confirm_sent()
        except BaseException:
            self.incidents.retract(updates)
            raise
        metrics.EVENTS_IN.labels(self.name).inc(events)
        metrics.RECORDS_OUT.labels(self.name).inc(alerts + len(updates))
        metrics.INCIDENT_UPDATES.inc(len(updates))
        self._report_correlation_state()

    def _report_correlation_state(self) -> None:
        correlations = self.detector.correlations
        metrics.CORRELATION_GROUPS.set(correlations.group_count)
        metrics.CORRELATION_BYTES.set(correlations.state_bytes)
        metrics.INCIDENTS_OPEN.set(self.incidents.open_count)
        metrics.INCIDENT_LINKS.set(self.incidents.link_count)
        metrics.INCIDENT_BYTES.set(self.incidents.state_bytes)
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


@dataclass(slots=True)
class _IndexBatch:
    """A batch of the index stage, decoded and checked, ready to be written."""

    documents: list[Document] = field(default_factory=list)
    #: id(document) -> its record and its place in the record's envelope (for dead letters).
    origin: dict[int, tuple[ConsumerRecord, int]] = field(default_factory=dict)
    updates: list[dict[str, Any]] = field(default_factory=list)
    #: Incident id -> the records of its updates in this batch (for dead letters).
    update_origins: dict[str, list[tuple[ConsumerRecord, int, bytes]]] = field(default_factory=dict)
    #: Lines that cannot be indexed (record, reason, line, position): dead-lettered on write.
    refused: list[tuple[ConsumerRecord, str, bytes, int]] = field(default_factory=list)
    lines: int = 0


class IndexStage(OverlappingStage[_IndexBatch]):
    """Events, alerts, incidents and the forwarding ledger -> Elasticsearch (events in daily
    indices, the others in one index each). Incident updates are merged into the incident
    document (socpipe.sinks.incidents), everything else is created once. The runner decodes
    the next batch while Elasticsearch writes the last ones."""

    name = "index"
    #: Documents are created by id, incidents merged under their sequence numbers (in any
    #: order: sinks/incidents.py): two batches may be written at once.
    writes_in_flight = 2

    def __init__(self, config: Config, producer: KafkaProducer, sink: ElasticsearchSink) -> None:
        super().__init__(config, producer)
        self.sink = sink
        self._daily = DailyIndices(config.elasticsearch)
        self.guard = AgencyGuard(config.kafka, self.name)

    @property
    def topics(self) -> list[str]:
        kafka = self.config.kafka
        others = [kafka.topics.alerts, kafka.topics.incidents, kafka.topics.forwarding]
        return others if kafka.per_agency else [kafka.topics.events, *others]

    @property
    def pattern(self) -> str | None:
        events = self.config.kafka.events_pattern()
        if events is None:
            return None
        return "|".join([events, *(re.escape(topic) for topic in self.topics)])

    @property
    def group(self) -> str:
        return self.config.stages.index_group

    def prepare(self, records: list[ConsumerRecord]) -> _IndexBatch:
        # Each event's JSON goes to Elasticsearch as it came from Kafka: it is decoded only
        # for its id and day and to check it (re-encoding would cost as much again), unless
        # its agency had to be corrected from its topic.
        settings, topics = self.config.elasticsearch, self.config.kafka.topics
        batch = _IndexBatch()
        for record in records:
            topic = record.topic
            for position, line in envelope.unpack(record.value):
                batch.lines += 1
                try:
                    if topic == topics.incidents:
                        update = incident_fields(envelope.decode(line))
                        identifier = str(update["incident.id"])
                        batch.updates.append(update)
                        batch.update_origins.setdefault(identifier, []).append(
                            (record, position, line)
                        )
                        continue
                    body = envelope.decode(line)
                    if topic == topics.alerts:
                        document = Document(settings.alerts_index, str(body["alert.id"]), line)
                    elif topic == topics.forwarding:
                        identifier = str(body["forward.id"])
                        document = Document(settings.forwarding_index, identifier, line)
                    else:
                        # An event's agency is its topic's (re-encoded only when corrected).
                        if self.guard.enforce(topic, body):
                            line = envelope.encode(body)
                        identifier = body.get("event.id") or _position_id(record, position)
                        index = self._daily(str(body["@timestamp"]))
                        document = Document(index, str(identifier), line)
                except (ValueError, KeyError) as error:
                    batch.refused.append((record, f"cannot index: {error}", line, position))
                    continue
                batch.origin[id(document)] = (record, position)
                batch.documents.append(document)
        return batch

    def write(self, batch: _IndexBatch) -> None:
        for record, reason, line, position in batch.refused:
            self.deadletter(record, reason, line, position)
        result = self.sink.write(batch.documents)
        for document, reason in result.rejected:
            record, position = batch.origin[id(document)]
            self.deadletter(record, f"elasticsearch refused: {reason}", document.source, position)
        merged = self._merge_incidents(batch.updates, batch.update_origins)
        self.confirm_sent()
        metrics.EVENTS_IN.labels(self.name).inc(batch.lines)
        metrics.RECORDS_OUT.labels(self.name).inc(result.created + merged.created + merged.updated)
        metrics.ES_DUPLICATES.inc(result.already_present + merged.unchanged)
        metrics.ES_REJECTED.inc(len(result.rejected) + len(merged.rejected))

    def _merge_incidents(
        self,
        updates: list[dict[str, Any]],
        origins: dict[str, list[tuple[ConsumerRecord, int, bytes]]],
    ) -> MergeResult:
        """Merge the batch's incident updates; an incident Elasticsearch refuses is
        dead-lettered with every record of its updates in this batch, and the others go on."""
        merged = self.sink.merge_incidents(self.config.elasticsearch.incidents_index, updates)
        for identifier, reason in merged.rejected:
            for record, position, line in origins.get(identifier, []):
                self.deadletter(record, f"elasticsearch refused: {reason}", line, position)
        return merged
