"""The stage loop's promise: a batch's offsets are committed only after the stage wrote its
output; a batch that failed is handed back (the consumer seeks to its first records) and
processed again; nothing is skipped. Kafka itself is tested in tests/integration; here a fake
consumer records what the loop asked of it."""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

import pytest
from kafka.consumer.fetcher import ConsumerRecord
from kafka.structs import OffsetAndMetadata, TopicPartition

from socpipe.core.config import Config
from socpipe.core.stage import RetryLater, Stage
from socpipe.daemon import runner
from socpipe.daemon.replay import commit_metadata

TOPIC = "t.events"


def record(partition: int, offset: int) -> ConsumerRecord:
    return ConsumerRecord(
        TOPIC, partition, 0, offset, 1_700_000_000_000 + offset, 0, None, b"x", None, None, 1, 1, 0
    )


class FakeConsumer:
    """Serves records per partition from its position; remembers seeks and commits."""

    def __init__(self, records: dict[int, list[ConsumerRecord]]) -> None:
        self.records = records
        self.positions = {partition: 0 for partition in records}
        self.commits: list[dict[TopicPartition, OffsetAndMetadata]] = []
        self.seeks: list[tuple[TopicPartition, int]] = []

    def poll(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[Any]]:
        batch: dict[TopicPartition, list[Any]] = {}
        for partition, records in self.records.items():
            position = self.positions[partition]
            taken = [item for item in records if item.offset >= position][:2]
            if taken:
                batch[TopicPartition(TOPIC, partition)] = taken
                self.positions[partition] = taken[-1].offset + 1
        return batch

    def commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        self.commits.append(offsets)

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self.seeks.append((partition, offset))
        self.positions[partition.partition] = offset

    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition(TOPIC, partition) for partition in self.records}

    def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {p: len(self.records[p.partition]) for p in partitions}

    def position(self, partition: TopicPartition) -> int:
        return self.positions[partition.partition]


class FlakyStage(Stage):
    """Fails its first ``failures`` batches, then processes; stops the loop when all is seen."""

    name = "fake"

    def __init__(self, failures: int, expected: int, stop: threading.Event) -> None:
        super().__init__(Config(), None)  # type: ignore[arg-type]
        self.failures = failures
        self.expected = expected
        self.stop = stop
        self.attempts: list[list[tuple[int, int]]] = []
        self.done: list[tuple[int, int]] = []

    @property
    def topics(self) -> list[str]:
        return [TOPIC]

    @property
    def group(self) -> str:
        return "fake"

    def process(self, records: list[ConsumerRecord]) -> None:
        batch = [(item.partition, item.offset) for item in records]
        self.attempts.append(batch)
        if len(self.attempts) <= self.failures:
            raise RetryLater("output unavailable")
        self.done.extend(batch)
        if len(set(self.done)) >= self.expected:
            self.stop.set()


def run_loop(stage: FlakyStage, consumer: FakeConsumer, stop: threading.Event) -> None:
    listener = runner.AssignmentListener("fake")
    loop = runner.StageLoop(stage, consumer, listener, stop, Config())  # type: ignore[arg-type]
    thread = threading.Thread(target=loop.run)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive(), "the loop did not finish its records"


@pytest.fixture(autouse=True)
def no_retry_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "RETRY_PAUSE_SECS", 0.0)


def test_commits_follow_written_batches_one_past_the_last_record() -> None:
    consumer = FakeConsumer(
        {0: [record(0, n) for n in range(3)], 1: [record(1, n) for n in range(2)]}
    )
    stop = threading.Event()
    stage = FlakyStage(failures=0, expected=5, stop=stop)
    run_loop(stage, consumer, stop)
    committed: dict[int, int] = defaultdict(int)
    for commit in consumer.commits:
        for partition, offset in commit.items():
            assert offset.offset > committed[partition.partition], "commits only move forward"
            committed[partition.partition] = offset.offset
            assert offset.metadata == commit_metadata(1_700_000_000_000 + offset.offset - 1)
    assert dict(committed) == {0: 3, 1: 2}
    assert sorted(stage.done) == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]
    assert consumer.seeks == []


def test_a_failed_batch_is_rewound_retried_and_committed_only_once_written() -> None:
    consumer = FakeConsumer({0: [record(0, n) for n in range(4)]})
    stop = threading.Event()
    stage = FlakyStage(failures=2, expected=4, stop=stop)
    run_loop(stage, consumer, stop)
    first = [(0, 0), (0, 1)]
    assert stage.attempts[:3] == [first, first, first], "the same batch, until it is written"
    assert consumer.seeks == [(TopicPartition(TOPIC, 0), 0)] * 2
    # No commit was made for a batch before it was written, and every record was written once.
    assert sorted(stage.done) == [(0, n) for n in range(4)]
    assert [commit[TopicPartition(TOPIC, 0)].offset for commit in consumer.commits] == [2, 4]


def test_an_unexpected_error_is_retried_too() -> None:
    consumer = FakeConsumer({0: [record(0, 0)]})
    stop = threading.Event()

    class Broken(FlakyStage):
        def process(self, records: list[ConsumerRecord]) -> None:
            if not self.attempts:
                self.attempts.append([])
                raise ValueError("a bug")
            super().process(records)

    stage = Broken(failures=0, expected=1, stop=stop)
    run_loop(stage, consumer, stop)
    assert consumer.seeks == [(TopicPartition(TOPIC, 0), 0)]
    assert [commit[TopicPartition(TOPIC, 0)].offset for commit in consumer.commits] == [1]
