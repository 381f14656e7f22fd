"""Follow log files like ``tail -F``, with read positions that survive restarts.

A position is saved only after Kafka acknowledged every event read up to it, so a restart
neither loses nor repeats lines. Rotation by rename is seen as a new inode at the path (the
old file is read to its end first); rotation by truncation as a file shorter than the saved
position (reading starts over). New files matching the glob are picked up as they appear.

A rotation while the collector was stopped: the saved inode is no longer at the path, but
logrotate's first rename (``auth.log`` -> ``auth.log.1``) keeps it in the same folder. The
follower finds it there (same inode, and the same first bytes, so a recycled inode is not
taken for it), reads it on from the saved position, then switches to the new file, as if it
had been running. If the old file is gone (compressed or deleted), the lines written to it
after the saved position are lost, and the log says so.

An audit process start is held back, with the lines read after it, until its working
directory is known (parsers/audit_join.py, at most about a second). A file's saved position
stops at its first held line (at the SYSCALL record of a held start), so a restart reads the
held lines again, and makes the start whole again, rather than skip them; a stop, and a file
rotated away, release what is held first.
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from kafka.errors import KafkaError

from socpipe.collectors.lines import DEFAULT_MAX_LINE_BYTES, READ_BYTES, Line, LineSplitter
from socpipe.collectors.live_context import Clock, LiveContext, wall_clock
from socpipe.collectors.parsers import ParseContext
from socpipe.collectors.publisher import KafkaHealth, Publisher
from socpipe.collectors.timestamps import TimeWindow
from socpipe.core import metrics
from socpipe.core.errors import SocpipeError
from socpipe.core.event import Event, SourceEventIds

log = logging.getLogger(__name__)


#: The longest wait between attempts while Kafka is away.
MAX_RETRY_SECS = 30.0

#: A file's fingerprint covers its first bytes, up to this many: enough to tell two log files
#: apart (timestamps, hosts), few enough to read at every save.
FINGERPRINT_BYTES = 256


@dataclass
class _Tracked:
    path: str
    handle: BinaryIO
    inode: int
    #: Where the lines read but not yet confirmed end (the splitter's resume offset).
    offset: int
    splitter: LineSplitter
    confirmed: int = 0
    #: The fingerprint once it covers FINGERPRINT_BYTES (it no longer changes then).
    head: str | None = None

    def fingerprint(self) -> str:
        """A digest of the file's first bytes (as far as they were read), saved with the
        position to recognise the file after a rename."""
        if self.head is not None:
            return self.head
        length = min(self.confirmed, FINGERPRINT_BYTES)
        digest = _fingerprint(self.handle, length)
        if length == FINGERPRINT_BYTES:
            self.head = digest
        return digest


def _fingerprint(handle: BinaryIO, length: int) -> str:
    return hashlib.sha256(os.pread(handle.fileno(), length, 0)).hexdigest()


class FileFollower:
    def __init__(
        self,
        patterns: list[str],
        state_file: Path,
        publisher: Publisher,
        context: ParseContext,
        poll_interval: float = 0.25,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        clock: Clock = wall_clock,
        window: TimeWindow | None = None,
        ticks: Callable[[], float] = time.monotonic,
    ) -> None:
        """``clock`` dates what arrives; ``ticks`` (monotonic seconds) times how long an
        audit process start waits for its working directory."""
        self.patterns = patterns
        self.state_file = state_file
        self.publisher = publisher
        self.context = LiveContext(context, clock, "file", window, ticks)
        self.health = KafkaHealth("file")
        self.poll_interval = poll_interval
        self.max_line_bytes = max_line_bytes
        self.files: dict[str, _Tracked] = {}
        self.saved = self._load_state()
        self._buffered = metrics.BUFFERED_BYTES.labels("file")

    def _load_state(self) -> dict[str, dict[str, int]]:
        try:
            return json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, json.JSONDecodeError) as error:
            raise SocpipeError(
                f"cannot read the collector's saved positions: {error}", str(self.state_file)
            ) from None

    def _save_state(self) -> None:
        state = {
            path: {
                "inode": tracked.inode,
                "offset": tracked.confirmed,
                "head": tracked.fingerprint(),
                "head_bytes": min(tracked.confirmed, FINGERPRINT_BYTES),
            }
            for path, tracked in self.files.items()
        }
        temporary = self.state_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(state))
        os.replace(temporary, self.state_file)  # atomic: a crash leaves the old or the new state

    def _open(self, path: str) -> None:
        try:
            handle: BinaryIO = open(path, "rb")  # noqa: SIM115  (kept open to follow the file)
            inode = os.fstat(handle.fileno()).st_ino
        except OSError as error:
            log.warning("cannot open file=%s reason=%s", path, error)
            return
        saved = self.saved.get(path, {})
        if saved and saved.get("inode") != inode:
            rotated = self._find_rotated(path, saved)
            if rotated is not None:
                handle.close()
                handle, inode = rotated, saved["inode"]
        offset = saved.get("offset", 0) if saved.get("inode") == inode else 0
        if offset > os.fstat(handle.fileno()).st_size:
            offset = 0  # truncated while we were down
        handle.seek(offset)
        self.files[path] = _Tracked(
            path, handle, inode, offset, self._splitter(offset), confirmed=offset
        )
        log.info("following file=%s from offset=%d", path, offset)

    def _find_rotated(self, path: str, saved: dict) -> BinaryIO | None:
        """The file that was at ``path`` when its position was saved, renamed in the same
        folder while the collector was stopped; None (and a warning) if it is gone."""
        folder = os.path.dirname(path) or "."
        offset = saved.get("offset", 0)
        for name in sorted(os.listdir(folder)):
            candidate = os.path.join(folder, name)
            try:
                status = os.stat(candidate)
            except OSError:
                continue
            if status.st_ino != saved["inode"] or not stat.S_ISREG(status.st_mode):
                continue
            if status.st_size < offset:
                break  # a recycled inode: the old file was longer than this one
            handle = open(candidate, "rb")  # noqa: SIM115  (kept open to follow the file)
            if "head" in saved and _fingerprint(handle, saved["head_bytes"]) != saved["head"]:
                handle.close()
                break  # a recycled inode: another file's first bytes
            log.warning(
                "file=%s was rotated while the collector was stopped; reading the rest of"
                " the old file, now %s, from offset=%d first",
                path,
                candidate,
                offset,
            )
            return handle
        if offset:
            log.warning(
                "file=%s was rotated while the collector was stopped and the old file is gone"
                " (compressed or deleted?): lines written to it after offset=%d are lost",
                path,
                offset,
            )
        return None

    def poll_once(self, final: bool = False) -> int:
        """Read what is new in every followed file, publish it, confirm, save positions.
        ``final``: the collector stops, so what is held for its working directory goes too.

        If Kafka does not acknowledge, every file goes back to its last confirmed position and
        the lines are read again next time: the log file itself is the buffer, and the events
        keep their ids, so a line sent twice is indexed once.
        """
        for pattern in self.patterns:
            for path in sorted(glob.glob(pattern)):
                if path not in self.files:
                    self._open(path)
        try:
            count = sum(self._read_new(tracked) for tracked in list(self.files.values()))
            count += self._publish_ready(self.context.flush() if final else self.context.expire())
            self._report_waiting()  # while Kafka is away, confirming blocks: say it first
            self.publisher.confirm()
            for tracked in list(self.files.values()):
                count += self._follow_rotation(tracked)
        except KafkaError as error:
            metrics.FOLLOWER_RETRIES.labels("file").inc()
            # What is held was read after the confirmed positions: it is read again too.
            self.context.join.discard()
            for tracked in self.files.values():
                tracked.handle.seek(tracked.confirmed)
                tracked.offset = tracked.confirmed
                tracked.splitter = self._splitter(tracked.confirmed)
            # The log files are the buffer: they are read again from the confirmed
            # positions once Kafka acknowledges.
            self.health.failed(error, self._report_waiting())
            return 0
        held = self._first_held_offsets()
        for path, tracked in self.files.items():
            # Everything published is acknowledged; a held line is not published yet.
            tracked.confirmed = min(tracked.offset, held.get(path, tracked.offset))
        self._save_state()
        waiting = self._report_waiting()
        if count:
            self.health.succeeded(waiting)
        return count

    def _report_waiting(self) -> int:
        """Bytes written to the followed files but not yet confirmed by Kafka: what the log
        files buffer while Kafka is away (metric ``socpipe_collector_buffered_bytes``)."""
        waiting = 0
        for tracked in self.files.values():
            try:
                waiting += max(os.fstat(tracked.handle.fileno()).st_size - tracked.confirmed, 0)
            except OSError:
                continue
        self._buffered.set(waiting)
        return waiting

    def _first_held_offsets(self) -> dict[str, int]:
        """Per file, where reading must start again to make what is held for a working
        directory again: its first held line, or the SYSCALL record of a held start."""
        first: dict[str, int] = {}
        for event in self.context.join.held():
            path, offset = event.get("log.file.path"), event.get("log.offset")
            if isinstance(path, str) and isinstance(offset, int):
                first[path] = min(offset, first.get(path, offset))
        return first

    def _splitter(self, offset: int) -> LineSplitter:
        return LineSplitter(self.max_line_bytes, offset)

    def _read_new(self, tracked: _Tracked, final: bool = False) -> int:
        """Publish the lines written since the last read. ``final``: the file will not grow
        (it was rotated away), so a last line without a newline is complete."""
        try:
            size = os.fstat(tracked.handle.fileno()).st_size
        except OSError:
            return 0
        count = 0
        if size < tracked.offset:
            log.warning("file truncated, reading from start file=%s", tracked.path)
            # What is held refers to the old content: it goes before the position resets.
            count += self._publish_ready(self.context.flush())
            tracked.handle.seek(0)
            tracked.offset = 0
            tracked.head = None  # new first bytes
            tracked.splitter = self._splitter(0)
        ids = SourceEventIds(self.context.base.agency_id, tracked.path)
        while chunk := tracked.handle.read(READ_BYTES):
            count += self._publish(tracked.path, ids, tracked.splitter.feed(chunk))
        if final and (last := tracked.splitter.finish()) is not None:
            count += self._publish(tracked.path, ids, [last])
        tracked.offset = tracked.splitter.resume_offset
        return count

    def _publish(self, path: str, ids: SourceEventIds, lines: list[Line]) -> int:
        count = 0
        # The lines of one read arrived together: one receipt time (asking the clock per
        # line cost a tenth of the collector's CPU).
        received = self.context.now()
        for line in lines:
            event = self.context.event(line.data, path, received)
            if event is None:
                continue
            event["log.file.path"] = path
            event["log.offset"] = line.offset
            event["event.id"] = ids.id(line.offset, event["event.original"])
            if line.truncated:
                self.context.truncated(event, path, f"offset={line.offset}", self.max_line_bytes)
            count += self._publish_ready(self.context.release(event))
        return count

    def _publish_ready(self, events: list[Event]) -> int:
        for event in events:
            self.publisher.publish(event)
        return len(events)

    def _follow_rotation(self, tracked: _Tracked) -> int:
        """Switch to a new file at the path, after the rest of the old one is confirmed."""
        try:
            current = os.stat(tracked.path).st_ino
        except FileNotFoundError:
            return 0  # renamed away and not yet recreated: keep reading the old file
        if current == tracked.inode:
            return 0
        log.info("file rotated file=%s", tracked.path)
        count = self._read_new(tracked, final=True)
        # The old file will not be read again: nothing of it may stay held.
        count += self._publish_ready(self.context.flush())
        self.publisher.confirm()
        tracked.handle.close()
        del self.files[tracked.path]
        self.saved.pop(tracked.path, None)
        self._open(tracked.path)
        return count

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop``. While Kafka is away every attempt reads the unconfirmed lines
        again, so attempts back off (doubling up to ``MAX_RETRY_SECS``)."""
        delay = self.poll_interval
        while not stop.is_set():
            self.poll_once()
            delay = (
                min(max(delay * 2, 1.0), MAX_RETRY_SECS)
                if self.health.up is False
                else self.poll_interval
            )
            stop.wait(delay)
        self.poll_once(final=True)
        for tracked in self.files.values():
            tracked.handle.close()
