"""The on-disk journal between syslog listeners and Kafka: order, bounds, and damage (a crash
in the middle of an append, a damaged record, a full disk) never losing what follows."""

from __future__ import annotations

import errno
import logging
import os
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from socpipe.collectors import spool as spool_module
from socpipe.collectors.spool import DiskSpool, JournalWriteError
from socpipe.core.errors import SocpipeError


def values(spool: DiskSpool, limit: int = 1000) -> list[bytes]:
    return [value for _, value in spool.read_batch(limit, timeout=0.01)[0]]


def send_all(spool: DiskSpool) -> list[bytes]:
    """Read everything and commit it, as the drain does once Kafka acknowledged."""
    records, position = spool.read_batch(100_000, timeout=0.01)
    spool.commit(position)
    return [value for _, value in records]


def test_records_come_back_in_order_and_leave_only_when_committed(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, segment_bytes=64)
    for number in range(10):
        spool.append(b"k", f"value-{number}".encode())
    first, position = spool.read_batch(4)
    assert [value for _, value in first] == [f"value-{n}".encode() for n in range(4)]
    again, _ = spool.read_batch(4)
    assert again == first  # nothing leaves before commit
    spool.commit(position)
    assert send_all(spool) == [f"value-{n}".encode() for n in range(4, 10)]
    assert spool.buffered_bytes == 0
    assert values(spool) == []


def test_a_reopened_journal_resumes_after_the_last_commit(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, segment_bytes=50)
    for number in range(6):
        spool.append(b"key", str(number).encode())
    _sent, position = spool.read_batch(2)
    spool.commit(position)
    spool.close()
    reopened = DiskSpool(tmp_path, segment_bytes=50)
    assert values(reopened) == [b"2", b"3", b"4", b"5"]
    assert reopened.buffered_bytes == 4 * len(spool_module.encode_record(b"key", b"2"))
    reopened.append(b"key", b"6")
    assert values(reopened) == [b"2", b"3", b"4", b"5", b"6"]


def test_consumed_segments_are_deleted(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, segment_bytes=30)
    for _ in range(10):
        spool.append(b"", b"x" * 20)
    assert len(list(tmp_path.glob("*.seg"))) > 3
    send_all(spool)
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
    _sent, position = spool.read_batch(1)
    spool.commit(position)
    assert done.wait(5)
    thread.join()
    assert values(spool) == [b"y" * 60]


def segment(folder: Path) -> Path:
    [only] = sorted(folder.glob("*.seg"))
    return only


def test_a_torn_last_record_is_cut_off_and_nothing_after_it_is_lost(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = DiskSpool(tmp_path)
    for number in range(3):
        spool.append(b"so-tttt/web01", b"event %d" % number)
    spool.close()
    # A crash in the middle of writing the third record: its last bytes never reached disk.
    path = segment(tmp_path)
    os.truncate(path, path.stat().st_size - 3)
    with caplog.at_level(logging.WARNING):
        reopened = DiskSpool(tmp_path)
    assert "torn record" in caplog.text and str(path) in caplog.text
    reopened.append(b"so-tttt/web01", b"event 3")
    reopened.append(b"so-tttt/web01", b"event 4")
    assert send_all(reopened) == [b"event 0", b"event 1", b"event 3", b"event 4"]
    assert reopened.buffered_bytes == 0


def test_a_damaged_record_is_skipped_with_a_log_line_and_the_rest_is_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = DiskSpool(tmp_path)
    for number in range(5):
        spool.append(b"key", b"event %d" % number)
    path = segment(tmp_path)
    data = bytearray(path.read_bytes())
    data[data.index(b"event 2") + 3] ^= 0xFF  # a flipped bit inside the third record
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.ERROR):
        sent = send_all(spool)
    assert sent == [b"event 0", b"event 1", b"event 3", b"event 4"]
    assert "damaged bytes skipped" in caplog.text
    assert spool.buffered_bytes == 0


def test_a_damaged_length_does_not_stop_the_records_after_it(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path)
    for number in range(4):
        spool.append(b"key", b"event %d" % number)
    path = segment(tmp_path)
    data = bytearray(path.read_bytes())
    second = data.index(b"event 1") - len(b"key") - 14  # the second record's header
    data[second + 6 : second + 10] = (1 << 20).to_bytes(4, "big")  # "1 MiB long": past the end
    path.write_bytes(bytes(data))
    assert send_all(spool) == [b"event 0", b"event 2", b"event 3"]


def test_a_failed_append_leaves_the_message_with_the_caller_and_the_journal_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """ENOSPC injected after half a record was written: the half is cut off again."""
    spool = DiskSpool(tmp_path)
    spool.append(b"key", b"before")
    real_write = spool_module._write_all

    def disk_full_halfway(descriptor: int, data: bytes) -> None:
        real_write(descriptor, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(spool_module, "_write_all", disk_full_halfway)
    with caplog.at_level(logging.WARNING), pytest.raises(JournalWriteError, match="No space"):
        spool.append(b"key", b"refused")
    with pytest.raises(JournalWriteError):
        spool.append(b"key", b"refused")
    assert caplog.text.count("cannot append") == 1, "one error line per outage, not per message"
    monkeypatch.setattr(spool_module, "_write_all", real_write)
    spool.append(b"key", b"refused")  # the caller still has it and tries again
    assert "appends work again after 2 failed" in caplog.text
    assert values(spool) == [b"before", b"refused"]
    spool.close()
    assert values(DiskSpool(tmp_path)) == [b"before", b"refused"]


@pytest.fixture
def small_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A real filesystem of 256 KiB (a tmpfs mounted for this test and removed after)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; the ENOSPC injection test covers the logic")
    folder = tmp_path / "small"
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "--lazy", str(folder)], check=True)


def test_a_full_disk_keeps_every_record_and_releasing_sent_ones_frees_it(
    small_filesystem: Path, caplog: pytest.LogCaptureFixture
) -> None:
    journal = small_filesystem / "journal"
    spool = DiskSpool(journal, segment_bytes=8 * 1024)
    appended: list[bytes] = []
    with caplog.at_level(logging.WARNING):
        while True:
            value = uuid.uuid4().bytes * 64  # 1 KiB
            try:
                spool.append(b"so-tttt/web01", value)
            except JournalWriteError:
                refused = value
                break
            appended.append(value)
    assert len(appended) > 100
    assert "No space left on device" in caplog.text
    # Kafka acknowledges most of what is journaled: committing needs no space, and
    # deleting the sent segments is what frees it.
    records, position = spool.read_batch(len(appended) - 10)
    spool.commit(position)
    spool.append(b"so-tttt/web01", refused)
    assert [value for _, value in records] + values(spool) == [*appended, refused]
    spool.close()
    reopened = DiskSpool(journal, segment_bytes=8 * 1024)
    assert values(reopened) == [*appended[-10:], refused]


def test_a_journal_of_the_older_format_is_refused_clearly(tmp_path: Path) -> None:
    (tmp_path / "position.json").write_text('{"segment": 0, "offset": 0}')
    with pytest.raises(SocpipeError, match="older socpipe"):
        DiskSpool(tmp_path)
