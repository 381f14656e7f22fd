"""Windows ``.evtx`` files, read with the ``evtx`` package (a maintained Rust parser).

Records are rendered to JSON by the parser and flattened into the System/EventData shape that
``windows_event`` expects. A damaged record is reported and skipped; the rest of the file is read.

An EVTX file is a 4 KiB header followed by 64 KiB chunks, each complete in itself (its own
string and template tables), so a range of whole chunks can be read on its own: the header
followed by those chunks is a valid file holding exactly their records. ``socpipe scan
--jobs`` reads a large file's chunk ranges in several processes this way.
"""

from __future__ import annotations

import bisect
import io
import json
import logging
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import evtx
import orjson

from socpipe.collectors.parsers.base import ParseContext
from socpipe.collectors.parsers.windows import windows_event
from socpipe.core.event import Event

log = logging.getLogger(__name__)

#: The file header's size, and every chunk's.
EVTX_HEADER_BYTES: Final = 4096
EVTX_CHUNK_BYTES: Final = 65536


def _attributes(node: Any) -> dict[str, Any]:
    return node.get("#attributes", {}) if isinstance(node, dict) else {}


def system_fields(system: dict[str, Any]) -> dict[str, Any]:
    """The System element as flat names (``Provider_Name`` like Sigma and Winlogbeat)."""
    event_id = system.get("EventID")
    if isinstance(event_id, dict):
        event_id = event_id.get("#text")
    return {
        "EventID": event_id,
        "Channel": system.get("Channel"),
        "Computer": system.get("Computer"),
        "Provider_Name": _attributes(system.get("Provider")).get("Name"),
        "TimeCreated": _attributes(system.get("TimeCreated")).get("SystemTime"),
        "EventRecordID": system.get("EventRecordID"),
        "ProcessID": _attributes(system.get("Execution")).get("ProcessID"),
        "UserID": _attributes(system.get("Security")).get("UserID"),
        "Level": system.get("Level"),
    }


def event_data_fields(event: dict[str, Any]) -> dict[str, Any]:
    """EventData (named values) or UserData (one nested element) as a flat name -> value map."""
    data = event.get("EventData")
    if isinstance(data, dict):
        unnamed = data.get("Data")
        flat = {key: value for key, value in data.items() if key not in ("Data", "#attributes")}
        if isinstance(unnamed, list):
            flat.update({f"Data{index or ''}": value for index, value in enumerate(unnamed)})
        elif unnamed is not None:
            flat["Data"] = unnamed
        return flat
    user_data = event.get("UserData")
    if isinstance(user_data, dict):
        flat = {}
        for element in user_data.values():
            if isinstance(element, dict):
                flat.update({k: v for k, v in element.items() if k != "#attributes"})
        return flat
    return {}


def _loads(text: str) -> Any:
    """orjson, five times faster than the standard library on these records (a third of an
    EVTX scan's time went to decoding them); the standard library for what orjson refuses
    (a lone surrogate escaped in a damaged record)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def read_evtx(
    path: Path, context: ParseContext, start: int = 0, end: int | None = None
) -> Iterator[tuple[int, Event]]:
    """Yield ``(record id, event)`` for every readable record of an EVTX file, or of the chunks
    that start in ``[start, end)`` when ``end`` is given (``start`` 0: from the first chunk).

    One parsing thread: the library's default starts a thread pool, and socpipe forks scan
    workers, which must never inherit a pool whose threads did not come along.
    """
    if end is None:
        parser = evtx.PyEvtxParser(str(path), number_of_threads=1)
    else:
        with path.open("rb") as handle:
            header = handle.read(EVTX_HEADER_BYTES)
            first = max(start, EVTX_HEADER_BYTES)
            handle.seek(first)
            # end may lie past the file's end (the last range reads to the end).
            chunks = handle.read(max(min(end, os.fstat(handle.fileno()).st_size) - first, 0))
        parser = evtx.PyEvtxParser(io.BytesIO(header + chunks), number_of_threads=1)
    records = parser.records_json()
    while True:
        try:
            record = next(records)
        except StopIteration:
            return
        except (RuntimeError, OSError, ValueError) as error:
            log.warning("evtx record unreadable file=%s reason=%s", path, error)
            continue
        if record is None:  # the binding's type allows it; no record to read
            continue
        try:
            document = _loads(record["data"]).get("Event", {})
        except (json.JSONDecodeError, AttributeError) as error:
            log.warning(
                "evtx record not JSON file=%s record=%s reason=%s",
                path,
                record.get("event_record_id"),
                error,
            )
            continue
        system = system_fields(document.get("System", {}))
        data = event_data_fields(document)
        event = windows_event(record["data"], system, data, context, "windows.evtx")
        yield record["event_record_id"], context.stamp(event)


# The EVTX layout (libevtx's documentation): a 4096-byte file header, then chunks of 64 KiB,
# each with a header that names the identifiers of its first and last record.
_FILE_MAGIC = b"ElfFile\x00"
_CHUNK_MAGIC = b"ElfChnk\x00"
_FILE_HEADER = struct.Struct("<8sQQQIHHHH")  # magic, first/last chunk, next id, ..., chunks
_CHUNK_HEADER = struct.Struct("<8sQQQQ")  # magic, first/last number, first/last identifier
#: A chunk holds at most this many records (64 KiB of records of at least 24 bytes).
_MAX_CHUNK_RECORDS = EVTX_CHUNK_BYTES // 24


class RecordIds:
    """The record identifiers read from a file, as sorted ranges: records come in order
    within a chunk, so this stays a few ranges whatever the file's size."""

    def __init__(self) -> None:
        self.ranges: list[list[int]] = []

    def add(self, record_id: int) -> None:
        ranges = self.ranges
        if ranges and ranges[-1][1] + 1 == record_id:
            ranges[-1][1] = record_id
            return
        index = bisect.bisect_left(ranges, [record_id, record_id])
        if index > 0 and ranges[index - 1][1] >= record_id - 1:
            ranges[index - 1][1] = max(ranges[index - 1][1], record_id)
        else:
            ranges.insert(index, [record_id, record_id])
            index += 1
        # Join with the next range when they now touch.
        previous = ranges[index - 1]
        while index < len(ranges) and ranges[index][0] <= previous[1] + 1:
            previous[1] = max(previous[1], ranges.pop(index)[1])

    def missing_from(self, first: int, last: int) -> list[tuple[int, int]]:
        """The ranges of ``first..last`` not read."""
        gaps = []
        position = first
        for start, end in self.ranges:
            if end < position:
                continue
            if start > last:
                break
            if start > position:
                gaps.append((position, start - 1))
            position = max(position, end + 1)
        if position <= last:
            gaps.append((position, last))
        return gaps


def evtx_damage(
    path: Path, read: RecordIds, start: int = 0, end: int | None = None
) -> tuple[int, list[str]]:
    """What an EVTX file (or its chunks that start in ``[start, end)``, a part read by a
    scan worker) holds that was not read: the records its chunk headers announce and the
    reader never gave (a truncated or zeroed part of the file: the parser skips those
    without a word), and chunks whose header itself is unreadable. Returns the number of
    records missing and one description per problem."""
    problems: list[str] = []
    missing = 0
    with path.open("rb") as handle:
        header = handle.read(EVTX_HEADER_BYTES)
        size = os.fstat(handle.fileno()).st_size
        if len(header) < _FILE_HEADER.size or not header.startswith(_FILE_MAGIC):
            # Said once, by the file's first part.
            return 0, ["no EVTX file header: nothing could be read"] if start == 0 else []
        chunks = _FILE_HEADER.unpack_from(header)[-1]
        for number in range(chunks):
            offset = EVTX_HEADER_BYTES + number * EVTX_CHUNK_BYTES
            if offset < start or (end is not None and offset >= end):
                continue
            handle.seek(offset)
            chunk = handle.read(_CHUNK_HEADER.size)
            if len(chunk) < _CHUNK_HEADER.size:
                problems.append(
                    f"chunk {number} missing: the file ends at byte {size:,}"
                    " (truncated): its records are lost"
                )
                continue
            magic, _first_number, _last_number, first, last = _CHUNK_HEADER.unpack(chunk)
            if magic != _CHUNK_MAGIC or not 0 <= last - first < _MAX_CHUNK_RECORDS:
                problems.append(
                    f"chunk {number} at byte {offset:,} has no valid header (zeroed or"
                    " overwritten?): its records are lost"
                )
                continue
            cut = " (the file is truncated)" if offset + EVTX_CHUNK_BYTES > size else ""
            for low, high in read.missing_from(first, last):
                missing += high - low + 1
                ids = f"{low}" if low == high else f"{low}-{high}"
                problems.append(f"chunk {number}: records {ids} unreadable or missing{cut}")
    return missing, problems
