"""Reading log files into events: folders, gzip, EVTX, and lines of any quality.

Bad bytes never stop a run: invalid UTF-8 is kept as ``\\xNN`` escapes, NUL bytes are kept,
and a line longer than the cap is truncated and tagged, never dropped, so an analyst can
always see that the record existed and what it began with. An audit process start leaves a
file's events once its working directory is known, in its place (parsers/audit_join.py).
"""

from __future__ import annotations

import gzip
import logging
import math
import os
import re
import stat
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, Final, NamedTuple

from socpipe.collectors.lines import DEFAULT_MAX_LINE_BYTES, decode_line, read_lines
from socpipe.collectors.parsers import ParseContext, Parser, get_parser, parse_detected
from socpipe.collectors.parsers.evtx_records import (
    EVTX_CHUNK_BYTES,
    EVTX_HEADER_BYTES,
    RecordIds,
    evtx_damage,
    read_evtx,
)
from socpipe.collectors.timestamps import FUTURE, TimeWindow
from socpipe.collectors.zones import ZoneWatch
from socpipe.core.errors import SocpipeError
from socpipe.core.event import Event, SourceEventIds, add_tag

log = logging.getLogger(__name__)

_GZIP_MAGIC = b"\x1f\x8b"
_EVTX_MAGIC = b"ElfFile\x00"
#: A scanned file's lines may be dated up to this long after it was last written (clock
#: skew between hosts); later times are replaced by that moment (see TimeWindow).
SCAN_WINDOW: Final = TimeWindow(timedelta(minutes=15), None)
#: Problems listed per file at most (a file of damaged chunks would fill the summary).
MAX_PROBLEMS_PER_FILE: Final = 20
#: What stops the reading of one file (a corrupt gzip or EVTX, a crashed reader), not the run.
_READ_ERRORS: Final = (OSError, EOFError, RuntimeError, SocpipeError)

#: How the records of an EVTX file are read: ``read_evtx``, or it run in a child process
#: (``scanner.isolation``) so that a crash of the native parser costs this file alone.
EvtxRecords = Callable[[Path, ParseContext, int, int | None], Iterator[tuple[int, Event]]]
Isolate = Callable[
    [str, EvtxRecords, Path, ParseContext, int, int | None], Iterator[tuple[int, Event]]
]


@dataclass
class ReadStats:
    """Counters a scan reports at the end; updated as records are read."""

    files: int = 0
    lines: int = 0
    events: int = 0
    unparsed: int = 0
    truncated: int = 0
    invalid_utf8: int = 0
    #: Events dated after their file was last written (their time set to that moment).
    future_timestamps: int = 0
    #: EVTX records the file's chunk headers announce and that could not be read.
    missing_records: int = 0
    #: Files with times written without an offset, read as UTC (no zone was given).
    zoneless_files: set[str] = field(default_factory=set)
    unreadable_files: list[str] = field(default_factory=list)
    #: Damage in files that were read (lost EVTX records and chunks), one line each.
    damaged: list[str] = field(default_factory=list)

    def add(self, other: ReadStats) -> None:
        """Count in what another reader read (a worker of a parallel scan)."""
        self.files += other.files
        self.lines += other.lines
        self.events += other.events
        self.unparsed += other.unparsed
        self.truncated += other.truncated
        self.invalid_utf8 += other.invalid_utf8
        self.future_timestamps += other.future_timestamps
        self.missing_records += other.missing_records
        self.zoneless_files.update(other.zoneless_files)
        self.unreadable_files.extend(other.unreadable_files)
        self.damaged.extend(other.damaged)


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a folder"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path: Path) -> BinaryIO:
    """``path`` opened for reading if it is a regular file, else ``OSError`` saying what it
    is: opening a FIFO blocks until someone writes to it, and /dev/zero never ends. Opened
    without blocking and checked on the open descriptor, so a FIFO put in its place after a
    check cannot hang the scan."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise OSError(f"{_kind(mode)}, not a regular file: not read")
        os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


class FilePart(NamedTuple):
    """The lines of a file that start in ``[start, end)``: a unit of work of a parallel scan.

    A line belongs to the part it starts in, even when it runs past ``end``, so parts cut at
    any byte still give every line exactly once. In an EVTX file a part is a range of whole
    chunks (``start`` 0: from the first). ``end`` None means the whole file, in any format
    (gzip cannot be entered in the middle). A named tuple, not a frozen dataclass: parts are
    pickled to the workers, and mypyc's frozen dataclasses do not unpickle.
    """

    path: Path
    start: int = 0
    end: int | None = None

    @property
    def size(self) -> int:
        """Bytes of input this part covers, for progress reporting."""
        try:
            file_size = self.path.stat().st_size
        except OSError:
            return 0
        # The last part of a file ends "anywhere after": it covers up to the file's end.
        return max(min(self.end, file_size) - self.start, 0) if self.end is not None else file_size


def split_into_parts(files: Iterable[Path], part_bytes: int) -> Iterator[FilePart]:
    """Plain-text files larger than ``part_bytes`` cut into byte ranges, EVTX files into
    ranges of whole chunks; gzip files and small files whole."""
    for path in files:
        try:
            magic = _sniff(path)
            size = path.stat().st_size
        except OSError:
            yield FilePart(path)  # the reader reports why it cannot be read
            continue
        if size <= part_bytes or magic.startswith(_GZIP_MAGIC):
            yield FilePart(path)
        elif _is_evtx(path, magic):
            yield from _evtx_parts(path, size, part_bytes)
        else:
            yield from _text_parts(path, size, part_bytes)


def _is_evtx(path: Path, magic: bytes) -> bool:
    return magic.startswith(_EVTX_MAGIC) or path.suffix.lower() == ".evtx"


def _evtx_parts(path: Path, size: int, part_bytes: int) -> Iterator[FilePart]:
    """Ranges of whole chunks of about ``part_bytes`` each; the last reads to the end."""
    step = max(part_bytes // EVTX_CHUNK_BYTES, 1) * EVTX_CHUNK_BYTES
    start = 0
    for end in range(EVTX_HEADER_BYTES + step, size, step):
        yield FilePart(path, start, end)
        start = end
    yield FilePart(path, start, sys.maxsize)


def _text_parts(path: Path, size: int, part_bytes: int) -> Iterator[FilePart]:
    for start in range(0, size, part_bytes):
        # The last part reads to the end of the file, even if it grew meanwhile.
        end = start + part_bytes if start + part_bytes < size else sys.maxsize
        yield FilePart(path, start, end)


_ROTATION = re.compile(r"^(?P<base>.+?)[.-](?P<number>\d+)(?P<ext>(?:\.[a-z0-9]+)?)$")


def rotation_order(path: Path) -> tuple[str, str, float]:
    """Sort key putting rotated logs oldest first: ``auth.log.2.gz``, ``auth.log.1``,
    ``auth.log``; ``access.log-20260301.gz`` before ``access.log-20260302.gz``.

    Reading a host's history in time order is what lets correlation windows see it whole.
    """
    name = path.name
    match = _ROTATION.match(name)
    if match is None:
        return (str(path.parent), name, math.inf)
    number = int(match["number"])
    # Small numbers count back from the live file (logrotate); long ones are dates (dateext).
    rank = -number if len(match["number"]) < 6 else number - 10**12
    return (str(path.parent), match["base"], rank)


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    """Files named directly, and every non-hidden entry below named folders other than
    folders, in a stable order (rotated logs oldest first). FIFOs, devices and dangling links
    are listed too: reading them reports why they are not read, rather than nothing."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(
                sorted(
                    (
                        candidate
                        for candidate in path.rglob("*")
                        if not candidate.is_dir()
                        and not any(
                            part.startswith(".") for part in candidate.relative_to(path).parts
                        )
                    ),
                    key=rotation_order,
                )
            )
        else:
            files.append(path)
    return files


def _sniff(path: Path) -> bytes:
    with open_regular(path) as handle:
        return handle.read(8)


class _Position:
    """Where we are in the underlying (possibly compressed) file, for progress reporting."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw

    def tell(self) -> int:
        try:
            return self.raw.tell()
        except (OSError, ValueError):
            return 0


class FileEventReader:
    """Turns files into events, with per-line format detection or one forced format."""

    def __init__(
        self,
        context: ParseContext,
        format_name: str = "auto",
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        line_ids: bool = True,
        window: TimeWindow = SCAN_WINDOW,
        evtx_records: EvtxRecords = read_evtx,
        isolate: Isolate | None = None,
        zones: ZoneWatch | None = None,
    ) -> None:
        """``line_ids`` False leaves ``event.id`` off the events of text lines, for a caller
        that gives ids (``LineEventIds``) only to the few events it keeps: hashing every line
        was a tenth of a scan's time. ``window``: content times accepted around a file's
        last write. ``isolate`` runs ``evtx_records`` (the native parser) elsewhere.
        ``zones``: the warnings about times without a zone, if shared with other readers."""
        self.context = context
        self.line_ids = line_ids
        self.forced: Parser | None = None if format_name == "auto" else get_parser(format_name)
        self.max_line_bytes = max_line_bytes
        self.window = window
        self.evtx_records = evtx_records
        self.isolate = isolate
        self.stats = ReadStats()
        self.zones = zones if zones is not None else ZoneWatch(context.zone)
        self._done_bytes = 0
        self._current: _Position | None = None
        self._future = 0  # events dated in the future, in the current file

    @property
    def bytes_read(self) -> int:
        """Bytes consumed across all files so far (compressed bytes for gzip)."""
        return self._done_bytes + (self._current.tell() if self._current else 0)

    def read(self, files: Iterable[Path]) -> Iterator[Event]:
        for path in files:
            try:
                magic = _sniff(path)
            except OSError as error:
                self._unreadable(path, error)
                continue
            self.stats.files += 1
            try:
                if _is_evtx(path, magic):
                    yield from self._read_evtx(path)
                else:
                    yield from self._read_text(path, gzipped=magic.startswith(_GZIP_MAGIC))
            except _READ_ERRORS as error:
                # A corrupt gzip or EVTX, or a crashed reader, stops that file only; what was
                # read is kept.
                self._unreadable(path, error)
            self._file_done(path)
            self._done_bytes += path.stat().st_size if path.exists() else 0
            self._current = None

    def read_part(self, part: FilePart) -> Iterator[Event]:
        """The events of one part of a file (see ``FilePart``)."""
        if part.end is None:
            yield from self.read([part.path])
            return
        if part.start == 0:
            self.stats.files += 1
        try:
            if _is_evtx(part.path, _sniff(part.path)):
                yield from self._read_evtx(part.path, part.start, part.end)
            else:
                yield from self._read_text(part.path, gzipped=False, start=part.start, end=part.end)
        except _READ_ERRORS as error:
            # Reported once per file, by its first part (every part meets a broken header).
            if part.start == 0:
                self._unreadable(part.path, error)
        self._file_done(part.path, f" bytes {part.start}-{part.end}")
        self._current = None

    def _unreadable(self, path: Path, error: Exception) -> None:
        reason = error.reason if isinstance(error, SocpipeError) else str(error)
        log.error("cannot read file=%s reason=%s", path, reason)
        self.stats.unreadable_files.append(f"{path}: {reason}")

    def _file_done(self, path: Path, where: str = "") -> None:
        """Say what the file (or part) held that needs a person's attention."""
        if self._future:
            self.stats.future_timestamps += self._future
            log.warning(
                "file=%s%s: %d events dated more than %s after the file was last written;"
                " their time set to that moment (kept in socpipe.original_timestamp, tagged"
                " socpipe_future_timestamp)",
                path,
                where,
                self._future,
                self.window.max_future,
            )
            self._future = 0
        if self.zones.check(str(path)):
            self.stats.zoneless_files.add(str(path))

    def _damaged(self, path: Path, problems: list[str]) -> None:
        for problem in problems[:MAX_PROBLEMS_PER_FILE]:
            log.warning("damaged file=%s: %s", path, problem)
            self.stats.damaged.append(f"{path}: {problem}")
        if len(problems) > MAX_PROBLEMS_PER_FILE:
            more = len(problems) - MAX_PROBLEMS_PER_FILE
            self.stats.damaged.append(f"{path}: ... and {more} more problems")

    def _context_for(self, path: Path) -> ParseContext:
        # Year-less timestamps are placed relative to when the file was last written.
        try:
            modified = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        except OSError:
            modified = self.context.reference_time
        return ParseContext(
            self.context.agency_id, self.context.agency_name, self.context.zone, modified
        )

    def _read_evtx(self, path: Path, start: int = 0, end: int | None = None) -> Iterator[Event]:
        context = self._context_for(path)
        source = str(path)
        ids = SourceEventIds(context.agency_id, source)
        read = RecordIds()
        records = (
            self.isolate(source, self.evtx_records, path, context, start, end)
            if self.isolate is not None
            else self.evtx_records(path, context, start, end)
        )
        try:
            for record_id, event in records:
                read.add(record_id)
                event["log.file.path"] = source
                event["event.id"] = ids.id(record_id, event["event.original"])
                self._check_time(event, context)
                self.stats.events += 1
                yield event
        finally:
            # Also after a crash: the records never read are said, by number.
            missing, problems = evtx_damage(path, read, start, end)
            self.stats.missing_records += missing
            self._damaged(path, problems)

    def _check_time(self, event: Event, context: ParseContext) -> None:
        if self.window.clamp(event, context.reference_time) == FUTURE:
            self._future += 1

    def _read_text(
        self, path: Path, gzipped: bool, start: int = 0, end: int | None = None
    ) -> Iterator[Event]:
        context = self._context_for(path)
        source = str(path)
        ids = SourceEventIds(context.agency_id, source)
        with open_regular(path) as raw:
            if end is None and not gzipped:
                # Up to the size at opening: a file written on meanwhile (or faking its
                # size) cannot keep the scan going.
                end = os.fstat(raw.fileno()).st_size
            self._current = _Position(raw)
            handle: BinaryIO = gzip.GzipFile(fileobj=raw) if gzipped else raw  # type: ignore[assignment]
            lines = read_lines(handle, self.max_line_bytes)
            if start > 0:
                # The line that starts at ``start`` is ours; one that started before is not.
                raw.seek(start - 1)
                lines = read_lines(raw, self.max_line_bytes, start - 1, skip_first=True)
            parser: Parser | None = self.forced
            # Process starts wait here for their directory (audit_join), once the reader gave
            # them their offset and id; the file's or part's end releases what is held.
            join = context.audit.join
            try:
                for offset, data, truncated in lines:
                    if end is not None and offset >= end:
                        break
                    if not data or data.isspace():  # blank: no copy made, unlike strip()
                        continue
                    self.stats.lines += 1
                    text, valid = decode_line(data)
                    event, parser = self._parse(text, context, parser)
                    event["log.file.path"] = source
                    event["log.offset"] = offset
                    if self.line_ids:
                        # A valid line's bytes are its text in UTF-8: hashed as read, not
                        # re-encoded.
                        event["event.id"] = ids.id(offset, text, data if valid else None)
                    else:
                        # The id is the reader's to give, later: one the record carried (an ECS
                        # JSON line's event.id) would be taken for it and is dropped, as it is
                        # overwritten above.
                        if "event.id" in event:  # rare: a test, where pop() is a method call
                            del event["event.id"]
                    if truncated or not valid:
                        if truncated:
                            add_tag(event, "socpipe_truncated")
                            self.stats.truncated += 1
                            log.warning(
                                "line truncated file=%s offset=%d cap=%d",
                                source,
                                offset,
                                self.max_line_bytes,
                            )
                        if not valid:
                            add_tag(event, "socpipe_invalid_utf8")
                            self.stats.invalid_utf8 += 1
                    self._check_time(event, context)
                    self.stats.events += 1
                    if join.idle():
                        yield event
                    else:
                        yield from join.admit(event)
            except _READ_ERRORS:
                yield from join.flush()  # what was read is kept, held or not
                raise
            yield from join.flush()

    def _parse(
        self, text: str, context: ParseContext, preferred: Parser | None
    ) -> tuple[Event, Parser | None]:
        """Parse with the format that worked for the previous line, else detect again."""
        if preferred is not None:
            event = preferred.parse(text, context)
            if event is not None:
                return event, preferred
        if self.forced is not None:
            self.stats.unparsed += 1
            event = get_parser("generic").parse(text, context)
            assert event is not None, "the generic parser accepts every line"
            return event, self.forced
        event, detected = parse_detected(text, context)
        if detected.name == "generic":
            self.stats.unparsed += 1
            return event, preferred
        return event, detected


class LineEventIds:
    """Gives an event read without its id (``FileEventReader(line_ids=False)``) the id the
    reader would have given it, from the fields the reader set: agency, file path, offset and
    the line's text. Events that have an id (EVTX records) keep it.

    Correlation windows keep a line's ``identity`` instead of its id, and ask for the id only
    when an alert lists it (``detectors.correlation.DeferredIds``).
    """

    def __init__(self) -> None:
        self._agency: str | None = None
        self._path: str | None = None
        self._ids: SourceEventIds | None = None

    def __call__(self, event: Event) -> None:
        if "event.id" not in event:
            event["event.id"] = self.id_of(self.identity(event))

    def identity(self, event: Event) -> tuple[Any, ...]:
        return (
            event["organization.id"],
            event["log.file.path"],
            event["log.offset"],
            event["event.original"],
        )

    def id_of(self, identity: tuple[Any, ...]) -> str:
        agency, path, offset, original = identity
        ids = self._ids
        # The events of one file share these very strings: identity is the usual answer.
        if ids is None or not (
            (agency is self._agency or agency == self._agency)
            and (path is self._path or path == self._path)
        ):
            # Kept events come in runs from one file: its constant part is hashed once a run.
            ids = self._ids = SourceEventIds(agency, path)
            self._agency, self._path = agency, path
        return ids.id(offset, original)
