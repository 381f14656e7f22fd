"""A bounded on-disk journal between a network listener and Kafka.

Syslog senders cannot replay, so every received message is appended here first and removed
only after Kafka acknowledged it: a Kafka outage or a collector crash loses nothing. When the
journal is full, ``append`` says so (or waits, if asked to) rather than dropping.

Damage never loses what follows it:

- Each record carries a mark, its lengths and a CRC-32C. A crash in the middle of an append
  leaves a torn record at the end of the last segment: opening the journal finds it, logs it
  and cuts it off, so the next append starts on a record boundary. A damaged record anywhere
  else (a disk error) is skipped up to the next valid record, with a log line and a metric.
- An append that fails (disk full, I/O error) is rolled back to the record boundary and
  raises ``JournalWriteError``: the message stays with the caller, which keeps it and tries
  again; an error is logged when appends start failing and a line when they work again.
- The read position lives in a small file rewritten in place (two checksummed slots, written
  in turn), so committing never needs free space: on a full disk, sent segments can still be
  released, which is what frees it.

Layout: numbered segment files (``000000000001.seg``), each starting with ``SEGMENT_MAGIC``
and holding records ``mark, key length, value length, CRC-32C, key, value``; and
``position`` holding the first unsent record (segment number and byte offset).
"""

from __future__ import annotations

import logging
import os
import struct
import threading
from pathlib import Path
from typing import Final

import crc32c

from socpipe.core import metrics
from socpipe.core.errors import SocpipeError

log = logging.getLogger(__name__)

SEGMENT_MAGIC: Final = b"SPJRNL2\n"
_MARK: Final = b"\xa5R"
_HEADER: Final = struct.Struct(">2sIII")  # mark, key length, value length, CRC-32C
#: A record longer than this is not a record but damage (a key is agency/host, a value one
#: encoded event, at most a frame or line cap of text).
MAX_RECORD_BYTES: Final = 64 << 20
_POSITION_SLOT: Final = struct.Struct(">QQQI")  # sequence, segment, offset, CRC-32C
Record = tuple[bytes, bytes]


class JournalUnavailable(SocpipeError):
    """A record could not be journaled now; the caller keeps it and tries again."""


class JournalFull(JournalUnavailable):
    """The journal holds its maximum of bytes awaiting Kafka."""


class JournalWriteError(JournalUnavailable):
    """A record could not be appended (disk full, I/O error); the journal is unchanged."""


def _record_crc(header: bytes, key: bytes, value: bytes) -> int:
    return crc32c.crc32c(value, crc32c.crc32c(key, crc32c.crc32c(header[:10])))


def encode_record(key: bytes, value: bytes) -> bytes:
    head = _HEADER.pack(_MARK, len(key), len(value), 0)
    return _HEADER.pack(_MARK, len(key), len(value), _record_crc(head, key, value)) + key + value


def _decode_at(data: bytes | memoryview, offset: int) -> tuple[Record | None, int]:
    """The record at ``offset`` and its size; (None, 0) if none starts there, (None, -1) if
    one may start there but the data ends before it does."""
    if len(data) - offset < _HEADER.size:
        return None, -1
    mark, key_length, value_length, crc = _HEADER.unpack_from(data, offset)
    if mark != _MARK or key_length + value_length > MAX_RECORD_BYTES:
        return None, 0
    end = offset + _HEADER.size + key_length + value_length
    if end > len(data):
        return None, -1
    header = bytes(data[offset : offset + _HEADER.size])
    key = bytes(data[offset + _HEADER.size : offset + _HEADER.size + key_length])
    value = bytes(data[offset + _HEADER.size + key_length : end])
    if _record_crc(header, key, value) != crc:
        return None, 0
    return (key, value), end - offset


def _next_record(data: bytes, offset: int) -> int:
    """Where the next whole, valid record starts after damage at ``offset`` (or the end)."""
    position = data.find(_MARK, offset + 1)
    while position >= 0:
        record, _size = _decode_at(data, position)
        if record is not None:
            return position
        position = data.find(_MARK, position + 1)
    return len(data)


class DiskSpool:
    def __init__(
        self,
        directory: Path,
        max_bytes: int = 1 << 30,
        segment_bytes: int = 16 << 20,
        collector: str = "syslog",
    ) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.collector = collector
        directory.mkdir(parents=True, exist_ok=True)
        if (directory / "position.json").exists():
            raise SocpipeError(
                "journal written by an older socpipe (another record format): let that "
                "version send it to Kafka, or move the folder away",
                str(directory),
            )
        self._lock = threading.Condition()
        self._position_file = _PositionFile(directory / "position")
        segments = self._segments()
        self._read_segment, self._read_offset = self._position_file.load() or (
            segments[0] if segments else 1,
            len(SEGMENT_MAGIC),
        )
        self._write_segment = segments[-1] if segments else self._read_segment
        self._write_offset = self._repair_tail(self._write_segment)
        self._writer = self._open_segment(self._write_segment)
        self._buffered = self._measure()
        self._failing = 0  # appends failed in a row (for the log lines)
        self._reported: set[tuple[int, int]] = set()  # damage already logged

    @staticmethod
    def _name(number: int) -> str:
        return f"{number:012d}.seg"

    def _path(self, number: int) -> Path:
        return self.directory / self._name(number)

    def _segments(self) -> list[int]:
        return sorted(int(path.stem) for path in self.directory.glob("*.seg"))

    def _open_segment(self, number: int) -> int:
        """A segment opened for appending, its header written if it has none yet (a
        segment left empty or with part of its header by a failed attempt starts over)."""
        descriptor = os.open(self._path(number), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            if os.fstat(descriptor).st_size < len(SEGMENT_MAGIC):
                os.ftruncate(descriptor, 0)
                _write_all(descriptor, SEGMENT_MAGIC)
        except OSError:
            os.close(descriptor)
            raise
        return descriptor

    def _repair_tail(self, number: int) -> int:
        """Cut a torn record off the end of the segment appends go to; its valid length.

        Damage followed by valid records is left for the reader to skip (cutting there would
        lose them); only bytes after the last valid record are a torn append."""
        path = self._path(number)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return len(SEGMENT_MAGIC)
        if len(data) < len(SEGMENT_MAGIC) and SEGMENT_MAGIC.startswith(data):
            return len(SEGMENT_MAGIC)  # a crash while the segment was created: rewritten
        if not data.startswith(SEGMENT_MAGIC):
            raise SocpipeError(
                "not a journal segment of this socpipe version (no segment header)", str(path)
            )
        offset = end = len(SEGMENT_MAGIC)
        while offset < len(data):
            record, size = _decode_at(data, offset)
            if record is None:
                offset = _next_record(data, offset)
                continue
            offset += size
            end = offset
        if end < len(data):
            log.warning(
                "journal: torn record at the end of %s offset=%d (%d bytes, left by an"
                " interrupted write) skipped; the records before it are kept",
                path,
                end,
                len(data) - end,
            )
            metrics.JOURNAL_SKIPPED_BYTES.labels(self.collector).inc(len(data) - end)
            os.truncate(path, end)
        return end

    def _measure(self) -> int:
        """Bytes from the read position to the end of the journal (segment headers aside)."""
        total = 0
        for number in self._segments():
            if number < self._read_segment:
                continue
            start = self._read_offset if number == self._read_segment else len(SEGMENT_MAGIC)
            total += max(self._path(number).stat().st_size - start, 0)
        return total

    @property
    def buffered_bytes(self) -> int:
        return self._buffered

    @property
    def read_position(self) -> tuple[int, int]:
        """Segment and offset of the first unsent record."""
        return self._read_segment, self._read_offset

    def append(self, key: bytes, value: bytes, timeout: float | None = None) -> bool:
        """Add a record; waits while the journal is full (``timeout`` None: as long as it
        takes). False if the time ran out; ``JournalWriteError`` if the disk refused it."""
        record = encode_record(key, value)
        size = len(record)
        with self._lock:
            if not self._lock.wait_for(
                lambda: self._buffered + size <= self.max_bytes or self._buffered == 0, timeout
            ):
                return False
            try:
                if self._write_offset >= self.segment_bytes:
                    self._next_segment()
                _write_all(self._writer, record)
            except OSError as error:
                self._roll_back()
                self._failed(error)
                raise JournalWriteError(
                    f"cannot append to the journal: {error.strerror or error}",
                    str(self._path(self._write_segment)),
                ) from None
            self._write_offset += size
            self._buffered += size
            if self._failing:
                log.warning(
                    "journal: appends work again after %d failed; nothing was lost",
                    self._failing,
                )
                self._failing = 0
            self._lock.notify_all()
        return True

    def _next_segment(self) -> None:
        descriptor = self._open_segment(self._write_segment + 1)
        os.close(self._writer)
        self._writer = descriptor
        self._write_segment += 1
        self._write_offset = len(SEGMENT_MAGIC)

    def _roll_back(self) -> None:
        """Cut what a failed append wrote, so the next one starts on a record boundary."""
        try:
            os.ftruncate(self._writer, self._write_offset)
        except OSError as error:
            # The partial record stays; later records go to a new segment, and the reader
            # skips the damage with a log line.
            log.error(
                "journal: cannot cut a partial record off %s (%s); continuing in a new segment",
                self._path(self._write_segment),
                error,
            )
            self._write_offset = self.segment_bytes

    def _failed(self, error: OSError) -> None:
        metrics.JOURNAL_ERRORS.labels(self.collector).inc()
        if not self._failing:
            log.error(
                "journal: cannot append to %s: %s; each message stays with the receiver,"
                " which holds it in memory and pauses until appends work again",
                self.directory,
                error.strerror or error,
            )
        self._failing += 1

    def sync(self) -> None:
        """Make appended records durable against a machine crash (not only a process crash)."""
        with self._lock:
            os.fsync(self._writer)

    def read_batch(
        self, max_records: int, timeout: float = 0.5
    ) -> tuple[list[Record], tuple[int, int]]:
        """The oldest unsent records (without removing them) and the position after them."""
        with self._lock:
            self._lock.wait_for(lambda: self._buffered > 0, timeout)
            segment, offset = self._read_segment, self._read_offset
            write_segment = self._write_segment
        records: list[Record] = []
        while len(records) < max_records:
            try:
                data = self._path(segment).read_bytes()
            except FileNotFoundError:
                break
            offset = max(offset, len(SEGMENT_MAGIC))
            while len(records) < max_records and offset < len(data):
                record, size = _decode_at(data, offset)
                if record is not None:
                    records.append(record)
                    offset += size
                    continue
                skip_to = _next_record(data, offset)
                if size < 0 and segment == write_segment and skip_to == len(data):
                    break  # the last record, still being written
                # Damage (a header whose lengths run past valid records is damage too, not
                # a record to wait for).
                self._damaged(segment, offset, skip_to)
                offset = skip_to
            if len(records) < max_records and offset >= len(data) and segment < write_segment:
                segment, offset = segment + 1, len(SEGMENT_MAGIC)
                continue
            break
        return records, (segment, offset)

    def _damaged(self, segment: int, start: int, end: int) -> None:
        if (segment, start) in self._reported:
            return  # read again after a failed send
        self._reported.add((segment, start))
        log.error(
            "journal: damaged bytes skipped in %s offset=%d-%d; the records after them are sent",
            self._path(segment),
            start,
            end,
        )
        metrics.JOURNAL_SKIPPED_BYTES.labels(self.collector).inc(end - start)

    def commit(self, position: tuple[int, int]) -> None:
        """Mark everything before ``position`` as sent; delete segments no longer needed.
        Needs no free space (see the module's docstring)."""
        self._position_file.store(*position)
        with self._lock:
            for number in self._segments():
                if number < position[0]:
                    self._path(number).unlink()
            self._read_segment, self._read_offset = position
            self._reported = {done for done in self._reported if done >= position}
            self._buffered = self._measure()
            self._lock.notify_all()

    def close(self) -> None:
        with self._lock:
            os.close(self._writer)
            self._position_file.close()


def _write_all(descriptor: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(descriptor, view)
        view = view[written:]


class _PositionFile:
    """The read position, in two fixed slots written in turn and checked by CRC: a write torn
    by a crash leaves the other slot, and rewriting allocates no space on a full disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        self._sequence = 0
        if os.fstat(self._descriptor).st_size < 2 * _POSITION_SLOT.size:
            # Allocated now, while there is space: later writes only overwrite it.
            os.pwrite(self._descriptor, bytes(2 * _POSITION_SLOT.size), 0)

    def load(self) -> tuple[int, int] | None:
        data = os.pread(self._descriptor, 2 * _POSITION_SLOT.size, 0)
        best: tuple[int, int, int] | None = None
        for slot in range(2):
            chunk = data[slot * _POSITION_SLOT.size : (slot + 1) * _POSITION_SLOT.size]
            if len(chunk) < _POSITION_SLOT.size:
                continue
            sequence, segment, offset, crc = _POSITION_SLOT.unpack(chunk)
            if crc32c.crc32c(chunk[:-4]) != crc:
                continue
            if best is None or sequence > best[0]:
                best = (sequence, segment, offset)
        if best is None:
            if data.strip(b"\x00"):
                log.warning(
                    "journal: position file %s unreadable; reading from the start", self.path
                )
            return None
        self._sequence = best[0]
        return best[1], best[2]

    def store(self, segment: int, offset: int) -> None:
        self._sequence += 1
        body = struct.pack(">QQQ", self._sequence, segment, offset)
        slot = self._sequence % 2
        os.pwrite(
            self._descriptor,
            body + struct.pack(">I", crc32c.crc32c(body)),
            slot * _POSITION_SLOT.size,
        )
        os.fsync(self._descriptor)

    def close(self) -> None:
        os.close(self._descriptor)
