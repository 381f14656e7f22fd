"""The wire format of the events topic: several events per Kafka record, one JSON per line.

kafka-python spends about 70 µs of Python per record it produces or consumes, more than parsing
a log line costs; one record per event held the whole pipeline near 2,500 events/s. Packing the
events of one key (agency/host) into one record keeps their order and pays that cost once per
envelope. A record holding a single JSON object is an envelope of one, so producers that write
plain JSON records (other tools, older collectors) remain readable.

JSON is encoded strictly (socpipe.core.jsontext: valid UTF-8, no NaN) and decoded with orjson
where it can; the standard library takes over for what orjson refuses to decode.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import orjson

from socpipe.core import jsontext

#: An envelope is sent once it holds this many events or bytes: small enough that a consumer
#: batch stays a few thousand events, large enough that the per-record cost becomes noise.
MAX_EVENTS = 100
MAX_BYTES = 256 * 1024


def encode(document: dict[str, Any]) -> bytes:
    """One document as one line of JSON (a newline never appears inside: it is escaped)."""
    return jsontext.dumps(document)


def decode(line: bytes | str) -> dict[str, Any]:
    """The JSON object in one line; ValueError with the reason otherwise."""
    try:
        document = orjson.loads(line)
    except orjson.JSONDecodeError:
        try:
            document = json.loads(line)
        except (TypeError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
            raise ValueError(f"not JSON: {error}") from None
    if not isinstance(document, dict):
        raise ValueError(f"not a JSON object but {type(document).__name__}")
    return document


def unpack(value: bytes | None) -> Iterator[tuple[int, bytes]]:
    """The lines of an envelope with their position in it (empty lines skipped)."""
    if not value:
        yield 0, b""  # decode() then names the problem for the dead-letter record
        return
    first_line_end = value.find(b"\n")
    if first_line_end != -1 and not value[:first_line_end].rstrip().endswith(b"}"):
        # Not an envelope (each of its lines is a whole object) but one pretty-printed JSON
        # document from another producer.
        yield 0, value
        return
    for position, line in enumerate(value.split(b"\n")):
        if line.strip():
            yield position, line


class EnvelopePacker:
    """Collects encoded events per key and hands out full envelopes, in order per key."""

    def __init__(self, max_events: int = MAX_EVENTS, max_bytes: int = MAX_BYTES) -> None:
        self.max_events = max_events
        self.max_bytes = max_bytes
        self._open: dict[bytes, tuple[list[bytes], int]] = {}

    def add(self, key: bytes, line: bytes) -> bytes | None:
        """Add one event; the key's envelope when this filled it."""
        lines, size = self._open.get(key) or ([], 0)
        lines.append(line)
        size += len(line) + 1
        if len(lines) >= self.max_events or size >= self.max_bytes:
            self._open.pop(key, None)
            return b"\n".join(lines)
        self._open[key] = (lines, size)
        return None

    def drain(self) -> list[tuple[bytes, bytes]]:
        """Every partly filled envelope, as (key, value); the packer is empty afterwards."""
        envelopes = [(key, b"\n".join(lines)) for key, (lines, _) in self._open.items()]
        self._open.clear()
        return envelopes

    @property
    def pending_events(self) -> int:
        return sum(len(lines) for lines, _ in self._open.values())
