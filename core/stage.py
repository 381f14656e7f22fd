"""The stage contract shared by the daemon's stages and the forward stages.

A stage consumes a batch of Kafka records, writes its output durably, and only then lets the
runner commit the batch's offsets: at-least-once, with deterministic ids downstream so a
replay is harmless. Records it cannot handle go to the dead-letter topic with the reason.
"""

from __future__ import annotations

import json
import logging
import threading
from abc import ABC, abstractmethod
from typing import Any, Generic, TypeVar

from kafka import KafkaConsumer, KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord
from kafka.structs import TopicPartition

from socpipe.core import metrics
from socpipe.core.config import Config

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
        #: Writes of an overlapping stage send from several threads.
        self._sent_lock = threading.Lock()

    def send(self, topic: str, key: bytes | None, value: bytes) -> None:
        future = self.producer.send(topic, key=key, value=value)
        with self._sent_lock:
            self._sent.append(future)

    def confirm_sent(self) -> int:
        """Wait until Kafka acknowledged everything this batch produced (and maybe what a
        batch written beside it sent); raise if it did not."""
        self.producer.flush()
        with self._sent_lock:
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

    @property
    def pattern(self) -> str | None:
        """A regex of further topics to follow (the agencies' events topics, including those
        created later); ``topics`` are then the ones that must exist before starting."""
        return None

    @abstractmethod
    def process(self, records: list[ConsumerRecord]) -> None:
        """Handle a batch; return only once its output is durably written."""

    @property
    def state_horizon_secs(self) -> float:
        """How far back a partition's history shapes this stage's state: that much is re-read
        when the stage takes over a partition (daemon/replay.py). 0: the stage keeps none."""
        return 0.0

    @property
    def offset_reset(self) -> str:
        """Where a partition this stage's group never committed starts, unless
        :meth:`start_positions` moves it: ``earliest`` (the pipeline's own stages must not
        miss what was produced before they first ran)."""
        return "earliest"

    def start_positions(self, consumer: KafkaConsumer, partitions: set[TopicPartition]) -> set:
        """Called with the partitions newly assigned to this process, before their records are
        handled: a stage may seek some of them (and commit there). Returns those it moved;
        records already fetched for them are dropped (they come again from the new position)."""
        return set()

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


Prepared = TypeVar("Prepared")


class OverlappingStage(Stage, Generic[Prepared]):
    """A stage whose batch is a CPU part (decode, build the requests) and a waiting part (an
    outside store writing them). The runner prepares the next batch while the last one is
    written, and still commits each only after its write (daemon/runner.py): otherwise the
    store would idle while the stage decodes, and the stage while the store writes.

    ``prepare`` must send nothing (a batch prepared may be handed back unwritten when the one
    before it fails): what it refuses goes in its result, and ``write`` dead-letters it.
    """

    #: Batches written at once. More than one only for a stage whose writes do not depend on
    #: each other's order (the runner still commits them in order).
    writes_in_flight = 1

    @abstractmethod
    def prepare(self, records: list[ConsumerRecord]) -> Prepared:
        """Turn a batch into what ``write`` sends; no output yet."""

    @abstractmethod
    def write(self, prepared: Prepared) -> None:
        """Write a prepared batch; return only once it is durably written. Runs on one of the
        runner's writer threads, started in the order the batches came."""

    def process(self, records: list[ConsumerRecord]) -> None:
        self.write(self.prepare(records))
