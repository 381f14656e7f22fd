"""The normalized event: one flat dict keyed by ECS dotted names.

The event stays a plain dict (not a class) because it is written to Elasticsearch as it is
and travels through Kafka as JSON; helpers here keep the few invariants in one place.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

Event = dict[str, Any]

#: Fields every event carries, whatever parser produced it.
REQUIRED_FIELDS = ("@timestamp", "event.original", "event.kind", "event.module", "event.dataset")


def format_timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z`` suffix and millisecond precision, as Elasticsearch expects."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: timestamps must be timezone-aware")
    # isoformat is C: strftime and f-strings cost about twice as much, and a Windows or CEF
    # event formats its own time. The UTC offset it appends is always "+00:00" here.
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def new_event(original: str, module: str, dataset: str, timestamp: datetime | str) -> Event:
    """Start an event with the fields every event must have.

    ``timestamp`` may already be formatted: parsers cache formatted times, because the same
    second recurs on many consecutive lines and formatting is a visible share of parse time.
    """
    return {
        "@timestamp": timestamp if isinstance(timestamp, str) else format_timestamp(timestamp),
        "event.original": original,
        "event.kind": "event",
        "event.module": module,
        "event.dataset": dataset,
    }


def put(event: Event, field: str, value: Any) -> None:
    """Set a field only when the value carries information, so documents hold no empty keys."""
    if value is None or value == "" or value == "-":
        return
    event[field] = value


def event_id(agency: str, source: str, position: int | str, original: str) -> str:
    """A deterministic event id: the same record read again gets the same id.

    The source position (file path and line offset) is part of the id because two identical
    lines at different places in a log are two real events (a repeated failed login).
    """
    key = f"{agency}\x1f{source}\x1f{position}\x1f{original}"
    return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
