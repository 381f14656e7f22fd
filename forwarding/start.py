"""Where a destination's consumer group starts reading incidents.

A new destination must not silently send all of Kafka's retained history to the national
center. So a destination whose group has never committed starts from ``latest`` unless its
``start_from`` says ``earliest`` or a time, and that start is committed at once (a restart
before the first incident arrives does not start from "latest" again and skip what came in
between). Once the group has committed, ``start_from`` no longer applies; `socpipe forward
start-from DEST POSITION` moves it, showing first how many incidents that sends again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from kafka import KafkaConsumer
from kafka.structs import TopicPartition

from socpipe.core.errors import ConfigError

EARLIEST = "earliest"
LATEST = "latest"


@dataclass(frozen=True)
class StartPosition:
    """``earliest``, ``latest``, or a moment (milliseconds since the epoch)."""

    name: str
    moment_ms: int | None = None

    def __str__(self) -> str:
        return self.name


def parse_start(text: str, where: str = "start_from") -> StartPosition:
    """``earliest``, ``latest`` or an ISO 8601 time with a zone (``Z`` or an offset)."""
    value = text.strip()
    if value in (EARLIEST, LATEST):
        return StartPosition(value)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ConfigError(
            f"{where}: {text!r} is not earliest, latest or an ISO 8601 time with a zone"
            " (2026-03-01T00:00:00Z)"
        )
    return StartPosition(moment.astimezone(UTC).isoformat(), int(moment.timestamp() * 1000))


def start_offsets(
    consumer: KafkaConsumer, partitions: list[TopicPartition], position: StartPosition
) -> dict[TopicPartition, int]:
    """The offset each partition starts at for ``position`` (a time after the last record:
    the end)."""
    if not partitions:
        return {}
    ends: dict[TopicPartition, int] = consumer.end_offsets(partitions)
    if position.name == LATEST:
        return dict(ends)
    if position.name == EARLIEST:
        return dict(consumer.beginning_offsets(partitions))
    found = consumer.offsets_for_times({partition: position.moment_ms for partition in partitions})
    return {
        partition: found[partition].offset if found.get(partition) is not None else ends[partition]
        for partition in partitions
    }


def commit_metadata(position: StartPosition) -> str:
    return f"start_from={position}"
