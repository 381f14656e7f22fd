"""The normalized event: one flat dict keyed by ECS dotted names.

The event stays a plain dict (not a class) because it is written to Elasticsearch as it is
and travels through Kafka as JSON; helpers here keep the few invariants in one place.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any, Final

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


class SourceEventIds:
    """Event ids of the records of one source (a file), hashing its constant part once.

    An id is the BLAKE2b digest of ``agency, source, position, original`` joined by ``\x1f``.
    The source position (file path and line offset) is part of it because two identical lines
    at different places in a log are two real events (a repeated failed login); the original
    text, because a file rewritten in place holds other lines at the same offsets.
    Hashing is incremental, so the agency and path are hashed once per file instead of once
    per line (a tenth of a Linux line's parse time went into ids).
    """

    def __init__(self, agency: str, source: str) -> None:
        self._prefix = hashlib.blake2b(_encode(f"{agency}\x1f{source}\x1f"), digest_size=16)

    def id(self, position: int | str, original: str, encoded: bytes | None = None) -> str:
        """The id of the record at ``position``; ``encoded`` is ``original`` as UTF-8 when the
        caller has those bytes already (a valid line as read), saving an encode."""
        hasher = self._prefix.copy()
        hasher.update(_encode(f"{position}\x1f"))
        hasher.update(encoded if encoded is not None else _encode(original))
        return hasher.hexdigest()


def event_id(agency: str, source: str, position: int | str, original: str) -> str:
    """A deterministic event id: the same record read again gets the same id."""
    return SourceEventIds(agency, source).id(position, original)


def _encode(text: str) -> bytes:
    # surrogatepass: a lone surrogate from a JSON escape must not stop an id being made.
    return text.encode("utf-8", "surrogatepass")


#: socpipe's own tags (``socpipe_truncated``, ``socpipe_unparsed``...) say what socpipe did
#: to a record; a record claiming one would mislead analysts and rules, so content cannot.
OWN_TAG_PREFIX: Final = "socpipe_"
#: Fields only socpipe sets: the agency (from the collector's configuration, or the Kafka
#: topic) and socpipe's own annotations.
RESERVED_PREFIXES: Final = ("organization.", "socpipe.")


def content_tags(value: Any) -> list[Any]:
    """A record's own ``tags`` (a list or a lone value) without those claiming to be
    socpipe's own."""
    tags = value if type(value) is list else [value]
    return [
        tag for tag in tags if not (type(tag) is str and tag.lower().startswith(OWN_TAG_PREFIX))
    ]


def add_tag(event: Event, tag: str) -> None:
    """Append ``tag`` to the event's ``tags``. A record may bring its own ``tags`` of any
    type (a JSON line with ``"tags": "x"``): a lone value is kept as the first tag."""
    tags = event.get("tags")
    if type(tags) is list:
        tags.append(tag)
    elif tags is None:
        event["tags"] = [tag]
    else:
        event["tags"] = [tags, tag]


#: Tag of an event with a field whose value could not be read (the others are kept).
INVALID_FIELD_TAG = "socpipe_invalid_field"
#: The names of those fields (their text stays in ``event.original``).
INVALID_FIELDS = "socpipe.invalid_fields"
#: The longest run of digits read as a number: 18 digits always fit in 64 bits, which is
#: what Elasticsearch's long holds, and int() of a longer text costs more than it is worth.
_MAX_DIGITS = 18


def to_int(text: str) -> int | None:
    """``text`` as a non-negative integer if it is 1 to 18 ASCII digits, else None.

    ``str.isdigit`` is also true of superscripts and other scripts' digits, on which
    ``int()`` raises: a log line must not be able to make a parser fail that way."""
    if 0 < len(text) <= _MAX_DIGITS and text.isascii() and text.isdigit():
        return int(text)
    return None


def mark_invalid(event: Event, field: str) -> None:
    """Record that ``field`` was in the record but could not be read: the rest of the event
    is kept, and the tag says it is incomplete."""
    invalid = event.get(INVALID_FIELDS)
    if type(invalid) is list:
        invalid.append(field)
        return
    event[INVALID_FIELDS] = [field]
    add_tag(event, INVALID_FIELD_TAG)


def put_int(event: Event, field: str, text: str | None) -> None:
    """Set an integer field from text; text that is not one marks the field invalid."""
    if text is None or text == "" or text == "-":
        return
    value = to_int(text)
    if value is None:
        mark_invalid(event, field)
    else:
        event[field] = value
