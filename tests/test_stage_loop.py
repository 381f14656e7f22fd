"""The stage loop's promise: a batch's offsets are committed only after the stage wrote its
output; a batch that failed is handed back (the consumer seeks to its first records) and
processed again; nothing is skipped. Kafka itself is tested in tests/integration; here a fake
consumer records what the loop asked of it."""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any, NoReturn

import pytest
from kafka.consumer.fetcher import ConsumerRecord
from kafka.structs import OffsetAndMetadata, TopicPartition

from socpipe.core.config import Config
from socpipe.core.stage import OverlappingStage, RetryLater, Stage
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


class OnTopic:
    """The test stages' one topic, and a group named after the stage."""

    name: str

    @property
    def topics(self) -> list[str]:
        return [TOPIC]

    @property
    def group(self) -> str:
        return self.name


class FlakyStage(OnTopic, Stage):
    """Fails its first ``failures`` batches, then processes; stops the loop when all is seen."""

    name = "fake"

    def __init__(self, failures: int, expected: int, stop: threading.Event) -> None:
        super().__init__(Config(), None)  # type: ignore[arg-type]
        self.failures = failures
        self.expected = expected
        self.stop = stop
        self.attempts: list[list[tuple[int, int]]] = []
        self.done: list[tuple[int, int]] = []

    def process(self, records: list[ConsumerRecord]) -> None:
        batch = [(item.partition, item.offset) for item in records]
        self.attempts.append(batch)
        if len(self.attempts) <= self.failures:
            raise RetryLater("output unavailable")
        self.done.extend(batch)
        if len(set(self.done)) >= self.expected:
            self.stop.set()


def run_loop(stage: Stage, consumer: FakeConsumer, stop: threading.Event) -> None:
    listener = runner.AssignmentListener(stage.name)
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


class LoggingConsumer(FakeConsumer):
    """Also writes each commit into the stage's log, to see it among the stage's steps."""

    def __init__(self, records: dict[int, list[ConsumerRecord]], log: list[str]) -> None:
        super().__init__(records)
        self.log = log

    def commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        super().commit(offsets)
        self.log.append(f"commit {offsets[TopicPartition(TOPIC, 0)].offset}")


class SlowWriter(OnTopic, OverlappingStage[list[int]]):
    """Logs its steps; the first write waits until the next batch has been prepared (which
    only an overlapping loop can do), and writes fail while ``failures`` lasts."""

    name = "writer"

    def __init__(self, expected: int, stop: threading.Event, failures: int = 0) -> None:
        super().__init__(Config(), None)  # type: ignore[arg-type]
        self.expected, self.stop, self.failures = expected, stop, failures
        self.log: list[str] = []
        self.written: list[int] = []
        self.second_prepared = threading.Event()
        self.overlapped: bool | None = None

    def prepare(self, records: list[ConsumerRecord]) -> list[int]:
        offsets = [item.offset for item in records]
        self.log.append(f"prepare {offsets}")
        if len([step for step in self.log if step.startswith("prepare")]) == 2:
            self.second_prepared.set()
        return offsets

    def write(self, prepared: list[int]) -> None:
        if self.overlapped is None:
            self.overlapped = self.second_prepared.wait(timeout=30)
        if self.failures:
            self.failures -= 1
            self.fail(prepared)
        self.wrote(prepared)

    def fail(self, prepared: list[int]) -> NoReturn:
        self.log.append(f"failed {prepared}")
        raise RetryLater("store unavailable")

    def wrote(self, prepared: list[int]) -> None:
        self.log.append(f"wrote {prepared}")
        self.written.extend(prepared)
        if len(set(self.written)) >= self.expected:
            self.stop.set()


def write_six_records(stage: SlowWriter) -> LoggingConsumer:
    """Six records of one partition through the loop, two a batch, until all are written."""
    consumer = LoggingConsumer({0: [record(0, n) for n in range(6)]}, stage.log)
    run_loop(stage, consumer, stage.stop)
    return consumer


def test_an_overlapping_stage_prepares_the_next_batch_while_the_last_is_written() -> None:
    stage = SlowWriter(expected=6, stop=threading.Event())
    write_six_records(stage)
    assert stage.overlapped, "the second batch was not prepared during the first write"
    # Each batch is committed after its own write, in order, and the last one too although
    # the stop came during its write.
    wrote, committed = [], []
    for step in stage.log:
        if step.startswith("wrote"):
            wrote.append(step)
        elif step.startswith("commit"):
            committed.append(int(step.split()[1]))
            assert len(wrote) == len(committed), f"commit before its write: {stage.log}"
    assert committed == [2, 4, 6]
    assert stage.written == list(range(6))


def test_a_failed_write_goes_back_with_the_batch_prepared_after_it() -> None:
    stage = SlowWriter(expected=6, stop=threading.Event(), failures=1)
    consumer = write_six_records(stage)
    # The first batch failed while the second was prepared: the consumer went back to the
    # first batch's start, and nothing was committed before the first batch was written.
    assert stage.log[:3] == ["prepare [0, 1]", "prepare [2, 3]", "failed [0, 1]"]
    assert consumer.seeks == [(TopicPartition(TOPIC, 0), 0)]
    assert "commit" not in " ".join(stage.log[: stage.log.index("wrote [0, 1]")])
    assert stage.written == list(range(6))
    assert [commit[TopicPartition(TOPIC, 0)].offset for commit in consumer.commits] == [2, 4, 6]


class TwoWriters(SlowWriter):
    """Writes two batches at once; the first write fails once, after the second has begun."""

    writes_in_flight = 2

    def __init__(self, expected: int, stop: threading.Event) -> None:
        super().__init__(expected, stop)
        self.second_writing = threading.Event()
        self.failed_once = False

    def write(self, prepared: list[int]) -> None:
        if prepared == [2, 3]:
            self.second_writing.set()
        if prepared == [0, 1] and not self.failed_once:
            self.failed_once = True
            self.overlapped = self.second_writing.wait(timeout=30)
            self.fail(prepared)
        self.wrote(prepared)


def test_a_failed_write_takes_the_writes_beside_it_back_too() -> None:
    stage = TwoWriters(expected=6, stop=threading.Event())
    consumer = write_six_records(stage)
    assert stage.overlapped, "the second batch's write did not start beside the first"
    # The second batch was written, but not committed: the first failed, so both went back.
    assert consumer.seeks == [(TopicPartition(TOPIC, 0), 0)]
    first_written = stage.log.index("wrote [0, 1]")
    assert "commit" not in " ".join(stage.log[:first_written])
    assert sorted(set(stage.written)) == list(range(6))
    assert [commit[TopicPartition(TOPIC, 0)].offset for commit in consumer.commits][-1] == 6
