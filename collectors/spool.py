"""A bounded on-disk journal between a network listener and Kafka.

Syslog senders cannot replay, so every received message is appended here first and removed
only after Kafka acknowledged it: a Kafka outage or a collector crash loses nothing. When the
journal is full, ``append`` blocks (TCP senders feel backpressure) rather than dropping.

Layout: numbered segment files of length-prefixed records, and ``position.json`` holding the
first unsent record (segment number and byte offset), rewritten atomically on commit.
"""

from __future__ import annotations

import json
import os
import struct
import threading
from pathlib import Path

_HEADER = struct.Struct(">II")  # key length, value length
Record = tuple[bytes, bytes]


class DiskSpool:
    def __init__(
        self, directory: Path, max_bytes: int = 1 << 30, segment_bytes: int = 16 << 20
    ) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Condition()
        position = self._load_position()
        self._read_segment, self._read_offset = position
        segments = self._segments()
        self._write_segment = segments[-1] if segments else self._read_segment
        self._writer = (directory / self._name(self._write_segment)).open("ab")
        self._buffered = self._measure()

    @staticmethod
    def _name(number: int) -> str:
        return f"{number:012d}.seg"

    def _segments(self) -> list[int]:
        return sorted(int(path.stem) for path in self.directory.glob("*.seg"))

    def _load_position(self) -> tuple[int, int]:
        try:
            data = json.loads((self.directory / "position.json").read_text())
            return int(data["segment"]), int(data["offset"])
        except FileNotFoundError:
            segments = self._segments()
            return (segments[0] if segments else 0), 0

    def _measure(self) -> int:
        total = 0
        for number in self._segments():
            size = (self.directory / self._name(number)).stat().st_size
            if number == self._read_segment:
                size -= self._read_offset
            if number >= self._read_segment:
                total += size
        return total

    @property
    def buffered_bytes(self) -> int:
        return self._buffered

    def append(self, key: bytes, value: bytes, timeout: float | None = None) -> bool:
        """Add a record; blocks while the journal is full. False if ``timeout`` ran out."""
        size = _HEADER.size + len(key) + len(value)
        with self._lock:
            if not self._lock.wait_for(
                lambda: self._buffered + size <= self.max_bytes or self._buffered == 0, timeout
            ):
                return False
            if self._writer.tell() >= self.segment_bytes:
                self._writer.close()
                self._write_segment += 1
                self._writer = (self.directory / self._name(self._write_segment)).open("ab")
            self._writer.write(_HEADER.pack(len(key), len(value)) + key + value)
            self._writer.flush()
            self._buffered += size
            self._lock.notify_all()
        return True

    def sync(self) -> None:
        """Make appended records durable against a machine crash (not only a process crash)."""
        with self._lock:
            os.fsync(self._writer.fileno())

    def read_batch(
        self, max_records: int, timeout: float = 0.5
    ) -> tuple[list[Record], tuple[int, int]]:
        """The oldest unsent records (without removing them) and the position after them."""
        with self._lock:
            self._lock.wait_for(lambda: self._buffered > 0, timeout)
            segment, offset = self._read_segment, self._read_offset
        records: list[Record] = []
        while len(records) < max_records:
            path = self.directory / self._name(segment)
            if not path.exists():
                break
            with path.open("rb") as handle:
                handle.seek(offset)
                while len(records) < max_records:
                    header = handle.read(_HEADER.size)
                    if len(header) < _HEADER.size:
                        break
                    key_length, value_length = _HEADER.unpack(header)
                    body = handle.read(key_length + value_length)
                    if len(body) < key_length + value_length:
                        break  # a record still being written
                    records.append((body[:key_length], body[key_length:]))
                    offset = handle.tell()
            if len(records) < max_records and segment < self._write_segment:
                segment, offset = segment + 1, 0
                continue
            break
        return records, (segment, offset)

    def commit(self, position: tuple[int, int], records: list[Record]) -> None:
        """Mark everything before ``position`` as sent; delete segments no longer needed."""
        released = sum(_HEADER.size + len(key) + len(value) for key, value in records)
        temporary = self.directory / "position.tmp"
        temporary.write_text(json.dumps({"segment": position[0], "offset": position[1]}))
        os.replace(temporary, self.directory / "position.json")
        with self._lock:
            for number in self._segments():
                if number < position[0]:
                    (self.directory / self._name(number)).unlink()
            self._read_segment, self._read_offset = position
            self._buffered -= released
            self._lock.notify_all()

    def close(self) -> None:
        with self._lock:
            self._writer.close()
