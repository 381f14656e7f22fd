"""Rebuilding the detect stage's in-memory state when it takes over a partition.

Correlation windows (and anomaly-model windows) live in the detect process's memory. When a
process starts, or a rebalance hands it a partition another process held, that state is empty,
and a brute force half seen before the restart would be missed. Kafka already holds what is
needed to rebuild it: the events just before the committed offset. So, for each newly assigned
partition, the stage seeks back by the state's horizon (the longest correlation timespan plus
the allowed lateness), re-reads those records feeding only its windows, and raises nothing for
them (their alerts went out the first time); from the committed offset on it runs as usual.

Where to seek back from: every commit carries the Kafka timestamp of the partition's last
processed record as its metadata, so the stretch re-read ends at the committed offset even
after a long outage. A commit without it (an older socpipe) falls back to the wall clock.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from kafka import KafkaConsumer
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata, TopicPartition

log = logging.getLogger(__name__)

METADATA_PREFIX = "last_record_ms="
PROGRESS_EVERY_SECS = 30.0


def commit_metadata(last_record_ms: int) -> str:
    """What a commit says about the records it covers (read back by :func:`anchor_ms`)."""
    return f"{METADATA_PREFIX}{last_record_ms}"


def anchor_ms(committed: OffsetAndMetadata, now_ms: int) -> int:
    """The Kafka time of the last record the previous owner processed; ``now_ms`` when the
    commit does not say."""
    metadata = committed.metadata or ""
    if metadata.startswith(METADATA_PREFIX):
        try:
            return int(metadata[len(METADATA_PREFIX) :])
        except ValueError:
            pass
    return now_ms


@dataclass(frozen=True)
class ReplayRange:
    """Records ``start`` .. ``live_from - 1`` of a partition are re-read to rebuild state."""

    partition: TopicPartition
    start: int
    live_from: int

    @property
    def records(self) -> int:
        return self.live_from - self.start


def replay_range(
    partition: TopicPartition,
    committed_offset: int | None,
    first_in_horizon: int | None,
    held_until: int | None = None,
) -> ReplayRange | None:
    """The stretch to re-read, or None: nothing was committed yet (the partition is read from
    its beginning anyway), no record older than the committed offset is in the horizon, or
    this process's state already covers the partition up to ``held_until`` (it held the
    partition before a rebalance gave it back: only what another owner read since is new)."""
    if committed_offset is None or first_in_horizon is None:
        return None
    start = max(first_in_horizon, held_until or 0)
    if start >= committed_offset:
        return None
    return ReplayRange(partition, start, committed_offset)


class StateReplay:
    """Which records of the partitions a stage holds are re-reads, and where each re-read ends.

    Used by the runner: :meth:`begin` when partitions are assigned, :meth:`split` on every
    batch, :meth:`commit_offset` when committing (a re-read must never move a committed offset
    back), :meth:`finish` after every batch.
    """

    def __init__(self, stage: str, horizon_secs: float) -> None:
        self.stage = stage
        self.horizon_ms = int(horizon_secs * 1000)
        self._ranges: dict[TopicPartition, ReplayRange] = {}
        #: Per partition, the offset up to which this process's state has seen it. Kept when
        #: a partition is revoked: the state stays in memory, so a rebalance that hands the
        #: partition back costs no re-read.
        self._held_until: dict[TopicPartition, int] = {}
        self._started: dict[TopicPartition, float] = {}
        self._progress_logged = 0.0

    def begin(self, consumer: KafkaConsumer, partitions: Iterable[TopicPartition]) -> set:
        """Seek each partition back to the start of its horizon; returns those moved back (the
        records already fetched for them come again, after the re-read)."""
        moved: set[TopicPartition] = set()
        now_ms = int(time.time() * 1000)
        for partition in partitions:
            self._ranges.pop(partition, None)
            try:
                plan = self._plan(consumer, partition, now_ms)
            except KafkaError as error:
                log.warning(
                    "stage=%s partition=%s/%d: cannot find its history (%s); its correlation"
                    " and model state starts empty",
                    self.stage,
                    partition.topic,
                    partition.partition,
                    error,
                )
                continue
            if plan is None:
                continue
            consumer.seek(partition, plan.start)
            self._ranges[partition] = plan
            self._started[partition] = self._progress_logged = time.monotonic()
            moved.add(partition)
            log.info(
                "stage=%s partition=%s/%d re-reading %d records (offsets %d-%d, %.0f s before"
                " the last commit) to rebuild correlation and model state; no alerts for them",
                self.stage,
                partition.topic,
                partition.partition,
                plan.records,
                plan.start,
                plan.live_from - 1,
                self.horizon_ms / 1000,
            )
        return moved

    def _plan(
        self, consumer: KafkaConsumer, partition: TopicPartition, now_ms: int
    ) -> ReplayRange | None:
        committed = consumer.committed(partition, metadata=True)
        if committed is None:
            return None
        since = max(anchor_ms(committed, now_ms) - self.horizon_ms, 0)
        found = consumer.offsets_for_times({partition: since}).get(partition)
        return replay_range(
            partition,
            committed.offset,
            found.offset if found is not None else None,
            self._held_until.get(partition),
        )

    def split(self, records: list[ConsumerRecord]) -> tuple[list, list]:
        """(re-read records, live records) of a batch, each in the batch's order."""
        if not self._ranges:
            return [], records
        replayed, live = [], []
        for record in records:
            plan = self._ranges.get(TopicPartition(record.topic, record.partition))
            if plan is not None and record.offset < plan.live_from:
                replayed.append(record)
            else:
                live.append(record)
        return replayed, live

    def commit_offset(self, partition: TopicPartition, next_offset: int) -> int | None:
        """The offset to commit once the records before ``next_offset`` fed this process's
        state; None while they were only history (the committed offset already covers them,
        and committing less would move it back)."""
        self._held_until[partition] = max(self._held_until.get(partition, 0), next_offset)
        plan = self._ranges.get(partition)
        if plan is not None and next_offset <= plan.live_from:
            return None
        return next_offset

    def finish(self, consumer: KafkaConsumer) -> None:
        """Forget the re-reads that are over (or whose partition went to another process)."""
        assigned = consumer.assignment()
        report_progress = time.monotonic() - self._progress_logged >= PROGRESS_EVERY_SECS
        for partition, plan in list(self._ranges.items()):
            if partition not in assigned:
                del self._ranges[partition]
                continue
            position = consumer.position(partition)
            if position < plan.live_from:
                if report_progress:
                    self._progress_logged = time.monotonic()
                    log.info(
                        "stage=%s partition=%s/%d re-reading history: %d of %d records",
                        self.stage,
                        partition.topic,
                        partition.partition,
                        position - plan.start,
                        plan.records,
                    )
                continue
            del self._ranges[partition]
            log.info(
                "stage=%s partition=%s/%d state rebuilt from %d records in %.1f s; live from"
                " offset %d",
                self.stage,
                partition.topic,
                partition.partition,
                plan.records,
                time.monotonic() - self._started.pop(partition),
                plan.live_from,
            )
