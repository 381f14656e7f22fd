"""The on-disk journal between syslog listeners and Kafka."""

from __future__ import annotations

import threading
from pathlib import Path

from socpipe.collectors.spool import DiskSpool


def test_records_come_back_in_order_and_leave_only_when_committed(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, segment_bytes=64)
    for number in range(10):
        spool.append(b"k", f"value-{number}".encode())
    first, position = spool.read_batch(4)
    assert [value for _, value in first] == [f"value-{n}".encode() for n in range(4)]
    again, _ = spool.read_batch(4)
    assert again == first  # nothing leaves before commit
    spool.commit(position, first)
    rest, position = spool.read_batch(100)
    assert [value for _, value in rest] == [f"value-{n}".encode() for n in range(4, 10)]
    spool.commit(position, rest)
    assert spool.buffered_bytes == 0
    assert spool.read_batch(10, timeout=0.01)[0] == []


def test_a_reopened_journal_resumes_after_the_last_commit(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, segment_bytes=50)
    for number in range(6):
        spool.append(b"key", str(number).encode())
    batch, position = spool.read_batch(2)
    spool.commit(position, batch)
    spool.close()
    reopened = DiskSpool(tmp_path, segment_bytes=50)
    records, _ = reopened.read_batch(100)
    assert [value for _, value in records] == [b"2", b"3", b"4", b"5"]
    assert reopened.buffered_bytes == sum(8 + 3 + 1 for _ in range(4))
    reopened.append(b"key", b"6")
    assert [value for _, value in reopened.read_batch(100)[0]] == [b"2", b"3", b"4", b"5", b"6"]


def test_consumed_segments_are_deleted(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, segment_bytes=30)
    for _ in range(10):
        spool.append(b"", b"x" * 20)
    assert len(list(tmp_path.glob("*.seg"))) > 3
    records, position = spool.read_batch(100)
    spool.commit(position, records)
    assert len(list(tmp_path.glob("*.seg"))) == 1


def test_a_full_journal_blocks_until_space_is_freed(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, max_bytes=100)
    assert spool.append(b"", b"x" * 60)
    assert not spool.append(b"", b"y" * 60, timeout=0.1)
    done = threading.Event()

    def append_when_possible() -> None:
        spool.append(b"", b"y" * 60)
        done.set()

    thread = threading.Thread(target=append_when_possible)
    thread.start()
    assert not done.wait(0.2)
    records, position = spool.read_batch(1)
    spool.commit(position, records)
    assert done.wait(5)
    thread.join()
    assert [value for _, value in spool.read_batch(10)[0]] == [b"y" * 60]
