"""Runs stages as Kafka consumer groups until SIGTERM.

One thread per stage, each with its own consumer. A batch's offsets (last + 1 per partition)
are committed only after the stage has durably written its output. If processing fails, the
consumer seeks back to the batch start and tries again after a pause, so nothing is skipped.
SIGTERM/SIGINT let the current batch finish and commit, then the process exits.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import defaultdict, deque
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata, TopicPartition

from socpipe.core import heap, metrics
from socpipe.core.config import Config
from socpipe.core.errors import ConfigError, UsageError
from socpipe.core.kafka_clients import AssignmentListener, make_consumer, make_producer
from socpipe.core.stage import OverlappingStage, RetryLater, Stage
from socpipe.daemon import STAGE_NAMES
from socpipe.daemon.indicator_feed import IndicatorPoller, load_feed
from socpipe.daemon.replay import StateReplay, commit_metadata
from socpipe.daemon.stages import DetectStage, IndexStage
from socpipe.daemon.suppression_feed import SuppressionPoller
from socpipe.detectors.anomaly.artifact import ModelTrust, load_scorer
from socpipe.detectors.correlation import CorrelationEngine
from socpipe.detectors.detection import Detector
from socpipe.detectors.indicators import IndicatorMatcher
from socpipe.detectors.profile import ProfileError, load_profile
from socpipe.detectors.rules import load_rules
from socpipe.detectors.suppression import Suppressor
from socpipe.detectors.watcher import EventWatcher
from socpipe.forwarding.stage import ForwardStage
from socpipe.sinks.elasticsearch import ElasticsearchSink, connect, console_index

log = logging.getLogger(__name__)

RETRY_PAUSE_SECS = 2.0


@dataclass(slots=True)
class _Writing:
    """A prepared batch being written on one of the loop's writer threads."""

    records: list[ConsumerRecord]
    future: Future[None]
    started: float


class _BatchFailed(Exception):
    """A batch (and what was read after it) goes back to the consumer: ``error`` says why."""

    def __init__(self, records: list[ConsumerRecord], error: Exception) -> None:
        super().__init__(str(error))
        self.records, self.error = records, error


class StageLoop:
    """Polls, hands each batch to its stage, commits it once written. An overlapping stage
    (core/stage.py) prepares the next batch while writer threads write the last ones (up to
    its ``writes_in_flight``); batches are still committed one by one, in order, each after
    its own write."""

    def __init__(
        self,
        stage: Stage,
        consumer: KafkaConsumer,
        listener: AssignmentListener,
        stop: threading.Event,
        config: Config,
    ) -> None:
        self.stage = stage
        self.consumer = consumer
        self.listener = listener
        self.stop = stop
        self.config = config
        self._lag_reported = 0.0
        horizon = stage.state_horizon_secs
        self.replay = StateReplay(stage.name, horizon) if horizon > 0 else None
        self._writer: ThreadPoolExecutor | None = None
        self._depth = 0
        if isinstance(stage, OverlappingStage) and self.replay is None:
            self._depth = max(stage.writes_in_flight, 1)
            self._writer = ThreadPoolExecutor(self._depth, thread_name_prefix=f"{stage.name}-write")
        #: Writes started and not yet committed, oldest first.
        self._writing: deque[_Writing] = deque()

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                try:
                    records = self._poll()
                    if records:
                        metrics.RECORDS_IN.labels(self.stage.name).inc(len(records))
                        self._take(records)
                    else:
                        # Nothing new: the writes in flight are committed now, not later.
                        self._land_all()
                except _BatchFailed as failed:
                    if not self._hand_back(failed):
                        return
            self._settle()
        finally:
            if self._writer is not None:
                self._writer.shutdown(wait=True)

    def _poll(self) -> list[ConsumerRecord]:
        settings = self.config.stages
        try:
            batch = self.consumer.poll(
                timeout_ms=settings.poll_timeout_ms, max_records=settings.batch_max_records
            )
        except KafkaError as error:
            # A broker lost or a coordinator moving: the client finds the others; the
            # stage must outlive the moment (its thread ending would stop the process).
            log.warning("stage=%s poll failed (%s); polling again", self.stage.name, error)
            self.stop.wait(RETRY_PAUSE_SECS)
            return []
        records = [record for partition_records in batch.values() for record in partition_records]
        return self._take_over_partitions(records)

    def _take(self, records: list[ConsumerRecord]) -> None:
        """Process the batch and commit it, or (overlapping stage) prepare it, land the write
        before it, and start its own. Raises ``_BatchFailed`` with what must be read again."""
        started = time.monotonic()
        if self._writer is None:
            try:
                self._process(records)
            except Exception as error:
                raise _BatchFailed(records, error) from None
            self._committed(records, started)
            return
        assert isinstance(self.stage, OverlappingStage)
        try:
            prepared = self.stage.prepare(records)
        except Exception as error:
            self._land_all(following=records)
            raise _BatchFailed(records, error) from None
        while len(self._writing) >= self._depth:
            self._land_oldest(following=records)
        future = self._writer.submit(self.stage.write, prepared)
        self._writing.append(_Writing(records, future, started))

    def _land_oldest(self, following: list[ConsumerRecord] | None = None) -> None:
        """Wait for the oldest write in flight and commit its batch. If it failed, it goes
        back with every later batch (read after it, so not to be committed before it): the
        writes still in flight are waited for first, so nothing is written after the rewind."""
        writing = self._writing.popleft()
        try:
            writing.future.result()
        except Exception as error:
            dropped = [writing, *self._writing]
            wait([other.future for other in self._writing])
            self._writing.clear()
            records = [record for other in dropped for record in other.records]
            raise _BatchFailed([*records, *(following or [])], error) from None
        self._committed(writing.records, writing.started)

    def _land_all(self, following: list[ConsumerRecord] | None = None) -> None:
        while self._writing:
            self._land_oldest(following)

    def _settle(self) -> bool:
        """Land the writes in flight; False when the loop must stop."""
        try:
            self._land_all()
        except _BatchFailed as failed:
            return self._hand_back(failed)
        return True

    def _committed(self, records: list[ConsumerRecord], started: float) -> None:
        self._commit(records)
        if self.replay is not None:
            self.replay.finish(self.consumer)
        metrics.BATCH_SECONDS.labels(self.stage.name).observe(time.monotonic() - started)
        self._report_lag()

    def _hand_back(self, failed: _BatchFailed) -> bool:
        """Seek back to the batch's first records, so it is read again; False when the stage
        was told to stop in the middle of it."""
        self._rewind(failed.records)
        error = failed.error
        if isinstance(error, InterruptedError):
            log.warning(
                "stage=%s stopping before its batch was written; it will be replayed",
                self.stage.name,
            )
            return False
        if isinstance(error, RetryLater):
            log.warning(
                "stage=%s output unavailable (%s); batch handed back, retrying in %.0fs",
                self.stage.name,
                error,
                RETRY_PAUSE_SECS,
            )
        else:
            log.error(
                "stage=%s batch failed; retrying it in %.0fs",
                self.stage.name,
                RETRY_PAUSE_SECS,
                exc_info=error,
            )
        metrics.BATCHES_RETRIED.labels(self.stage.name).inc()
        self.stop.wait(RETRY_PAUSE_SECS)
        return True

    def _take_over_partitions(self, records: list[ConsumerRecord]) -> list[ConsumerRecord]:
        """Newly assigned partitions: the stage places those it never committed (a forward
        destination starts from its configured position), and the history of the others is
        re-read (see daemon/replay.py); records already fetched for a partition moved come
        again from its new position."""
        assigned = self.listener.take_assigned()
        if not assigned:
            return records
        moved = self.stage.start_positions(self.consumer, assigned)
        if self.replay is not None:
            moved |= self.replay.begin(self.consumer, assigned - moved)
        if not moved:
            return records
        return [
            record
            for record in records
            if TopicPartition(record.topic, record.partition) not in moved
        ]

    def _process(self, records: list[ConsumerRecord]) -> None:
        replayed, live = self.replay.split(records) if self.replay else ([], records)
        if replayed:
            self.stage.replay(replayed)
        if live:
            self.stage.process(live)

    def _report_lag(self, every_secs: float = 10.0) -> None:
        """Records waiting in this stage's partitions (one broker round trip, so not per batch).
        A broker that does not answer leaves the gauge as it was: the lag of one moment is not
        worth stopping the stage for, and the next report has it."""
        now = time.monotonic()
        if now - self._lag_reported < every_secs:
            return
        self._lag_reported = now
        assigned = list(self.consumer.assignment())
        if not assigned:
            return
        try:
            ends = self.consumer.end_offsets(assigned)
        except KafkaError as error:
            log.warning("stage=%s lag not measured: %s", self.stage.name, error)
            return
        lag = sum(
            max(ends[partition] - self.consumer.position(partition), 0) for partition in assigned
        )
        metrics.CONSUMER_LAG.labels(self.stage.name).set(lag)

    def _commit(self, records: list) -> None:
        """Commit past the batch; the metadata says when its last record was written, which
        is where a later owner of the partition starts re-reading history from."""
        last: dict[TopicPartition, ConsumerRecord] = {}
        for record in records:
            partition = TopicPartition(record.topic, record.partition)
            if partition not in last or record.offset > last[partition].offset:
                last[partition] = record
        offsets = {}
        for partition, record in last.items():
            to_commit: int | None = record.offset + 1
            if self.replay is not None:
                to_commit = self.replay.commit_offset(partition, record.offset + 1)
            if to_commit is not None:
                metadata = commit_metadata(record.timestamp) if record.timestamp > 0 else ""
                offsets[partition] = OffsetAndMetadata(to_commit, metadata, -1)
        if not offsets:
            return
        try:
            self.consumer.commit(offsets)
        except CommitFailedError as error:
            # The partitions moved to another process during the batch; it replays them, and
            # deterministic ids make that harmless.
            log.warning("stage=%s commit refused after rebalance: %s", self.stage.name, error)
        except KafkaError as error:
            # The group coordinator lost or moving: the next batch's commit covers this one
            # (offsets are cumulative), and a restart before it replays it harmlessly.
            log.warning(
                "stage=%s commit failed, the next one covers it: %s", self.stage.name, error
            )

    def _rewind(self, records: list) -> None:
        first: dict[TopicPartition, int] = defaultdict(lambda: 1 << 62)
        for record in records:
            partition = TopicPartition(record.topic, record.partition)
            first[partition] = min(first[partition], record.offset)
        for partition, offset in first.items():
            if partition in self.consumer.assignment():
                self.consumer.seek(partition, offset)


def build_detector(config: Config, stop: threading.Event | None = None) -> Detector:
    profile_path = config.rules_profile_path()
    try:
        profile = load_profile(profile_path) if profile_path is not None else None
    except ProfileError as error:
        raise ConfigError(f"stages.rules_profile: {error}") from None
    report = load_rules(config.rule_paths(), profile=profile)
    for problem in report.errors:
        log.error("rule skipped: %s", problem)
    if report.switched_off:
        log.info("rules profile: %d third-party rules off", len(report.switched_off))
    settings = config.stages
    correlations = CorrelationEngine(
        report.correlations,
        lateness=settings.correlation_lateness_secs,
        max_groups=settings.correlation_max_groups,
        max_entries=settings.correlation_max_entries,
        max_entries_per_group=settings.correlation_max_entries_per_group,
        max_bytes=settings.correlation_max_bytes,
        evidence_lines=settings.correlation_evidence_lines,
    )
    trust = ModelTrust(
        Path(settings.trusted_models_dir) if settings.trusted_models_dir else None,
        frozenset(settings.anomaly_model_sha256),
    )
    watchers: list[EventWatcher] = [
        load_scorer(Path(path), trust, settings.anomaly_max_bytes)
        for path in settings.anomaly_models
    ]
    feed = config.forwarding.indicators
    if feed.files or feed.url:
        # Bundle files must load (a broken file is a configuration error); the TAXII feed
        # may be down at start: detection starts anyway, and the poller keeps trying.
        matcher = IndicatorMatcher(load_feed(replace(feed, url=None)))
        metrics.INDICATORS.set(matcher.store.loaded)
        watchers.append(matcher)
        if feed.url and stop is not None:
            poller = IndicatorPoller(feed, matcher, stop)
            poller.poll_once()
            poller.start()
    log.info(
        "detect stage rules=%d correlations=%d watchers=%d",
        len(report.rules),
        len(report.correlations),
        len(watchers),
    )
    return Detector(report, correlations, watchers)


def build_suppressor(config: Config, stop: threading.Event) -> Suppressor | None:
    """The analysts' suppressions, loaded now and reloaded in the background (None when
    ``stages.suppressions_reload_secs`` is 0)."""
    interval = config.stages.suppressions_reload_secs
    if interval <= 0:
        return None
    suppressor = Suppressor()
    index = console_index(config.elasticsearch, "suppressions")
    # A short timeout: Elasticsearch being slow or away must not hold back detection's start.
    client = connect(config.elasticsearch).options(request_timeout=10, max_retries=1)
    poller = SuppressionPoller(client, index, suppressor, interval, stop)
    poller.poll_once()  # in force from the first event
    poller.start()
    return suppressor


def build_forward_stages(
    config: Config, producer: KafkaProducer, stop: threading.Event
) -> list[ForwardStage]:
    """One stage per destination; a destination that cannot be built is a config error."""
    destinations = config.forwarding.destinations
    if not destinations:
        raise ConfigError("stage forward: no forwarding.destinations configured")
    names = [destination.name for destination in destinations]
    if duplicated := sorted({name for name in names if names.count(name) > 1}):
        raise ConfigError(f"forwarding.destinations: duplicate name(s) {', '.join(duplicated)}")
    stages = []
    for destination in destinations:
        try:
            stages.append(ForwardStage(config, producer, destination, stop))
        except ConfigError as error:
            raise ConfigError(f"forwarding.destinations: {error.reason}") from None
    return stages


def build_stages(config: Config, names: list[str], stop: threading.Event) -> list[Stage]:
    producer = make_producer(config.kafka)
    stages: list[Stage] = []
    for name in names:
        if name == "detect":
            stages.append(
                DetectStage(
                    config, producer, build_detector(config, stop), build_suppressor(config, stop)
                )
            )
        elif name == "index":
            sink = ElasticsearchSink(
                connect(config.elasticsearch), config.elasticsearch, stop.is_set
            )
            stages.append(IndexStage(config, producer, sink))
        elif name == "forward":
            stages.extend(build_forward_stages(config, producer, stop))
        else:
            raise UsageError(f"unknown stage {name!r}; stages: {', '.join(STAGE_NAMES)}")
    return stages


def run(config: Config, names: list[str], stop: threading.Event | None = None) -> None:
    """Run the named stages until ``stop`` is set (SIGTERM and SIGINT set it)."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
    metrics.serve(config.metrics.port)
    stages = build_stages(config, names, stop)
    loops = []
    for stage in stages:
        consumer, listener = make_consumer(
            config.kafka,
            stage.group,
            stage.topics,
            config.stages.batch_max_records,
            stage.pattern,
            stage.offset_reset,
        )
        loops.append(StageLoop(stage, consumer, listener, stop, config))
    threads = [threading.Thread(target=loop.run, name=f"stage-{loop.stage.name}") for loop in loops]
    heap.settle_after_startup()
    for thread in threads:
        thread.start()
    log.info("running stages=%s", ",".join(names))
    for thread in threads:
        while thread.is_alive():
            thread.join(timeout=heap.RETURN_FREE_MEMORY_SECS)
            heap.return_free_memory()
    for loop in loops:
        loop.consumer.close(autocommit=False)
    for stage in stages:
        if isinstance(stage, IndexStage):
            stage.sink.close()
    if stages:
        stages[0].producer.close()
    log.info("stopped")
