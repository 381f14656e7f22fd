"""Reading log files into events: folders, gzip, EVTX, and lines of any quality.

Bad bytes never stop a run: invalid UTF-8 is kept as ``\\xNN`` escapes, NUL bytes are kept,
and a line longer than the cap is truncated and tagged, never dropped, so an analyst can
always see that the record existed and what it began with.
"""

from __future__ import annotations

import gzip
import logging
import math
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

from socpipe.collectors.lines import DEFAULT_MAX_LINE_BYTES, decode_line, read_lines
from socpipe.collectors.parsers import ParseContext, Parser, get_parser, parse_detected
from socpipe.collectors.parsers.evtx_records import EVTX_CHUNK_BYTES, EVTX_HEADER_BYTES, read_evtx
from socpipe.core.event import Event, SourceEventIds, add_tag

log = logging.getLogger(__name__)

_GZIP_MAGIC = b"\x1f\x8b"
_EVTX_MAGIC = b"ElfFile\x00"


@dataclass
class ReadStats:
    """Counters a scan reports at the end; updated as records are read."""

    files: int = 0
    lines: int = 0
    events: int = 0
    unparsed: int = 0
    truncated: int = 0
    invalid_utf8: int = 0
    unreadable_files: list[str] = field(default_factory=list)

    def add(self, other: ReadStats) -> None:
        """Count in what another reader read (a worker of a parallel scan)."""
        self.files += other.files
        self.lines += other.lines
        self.events += other.events
        self.unparsed += other.unparsed
        self.truncated += other.truncated
        self.invalid_utf8 += other.invalid_utf8
        self.unreadable_files.extend(other.unreadable_files)


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
    """Files named directly, and every non-hidden file below named folders, in a stable order
    (rotated logs oldest first)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(
                sorted(
                    (
                        candidate
                        for candidate in path.rglob("*")
                        if candidate.is_file()
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
    with path.open("rb") as handle:
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
    ) -> None:
        """``line_ids`` False leaves ``event.id`` off the events of text lines, for a caller
        that gives ids (``LineEventIds``) only to the few events it keeps: hashing every line
        was a tenth of a scan's time."""
        self.context = context
        self.line_ids = line_ids
        self.forced: Parser | None = None if format_name == "auto" else get_parser(format_name)
        self.max_line_bytes = max_line_bytes
        self.stats = ReadStats()
        self._done_bytes = 0
        self._current: _Position | None = None

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
            except (OSError, EOFError, RuntimeError) as error:
                # A corrupt gzip or EVTX stops that file only; what was read is kept.
                self._unreadable(path, error)
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
        except (OSError, EOFError, RuntimeError) as error:
            # Reported once per file, by its first part (every part meets a broken header).
            if part.start == 0:
                self._unreadable(part.path, error)
        self._current = None

    def _unreadable(self, path: Path, error: Exception) -> None:
        log.error("cannot read file=%s reason=%s", path, error)
        self.stats.unreadable_files.append(f"{path}: {error}")

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
        for record_id, event in read_evtx(path, context, start, end):
            event["log.file.path"] = source
            event["event.id"] = ids.id(record_id, event["event.original"])
            self.stats.events += 1
            yield event

    def _read_text(
        self, path: Path, gzipped: bool, start: int = 0, end: int | None = None
    ) -> Iterator[Event]:
        context = self._context_for(path)
        source = str(path)
        ids = SourceEventIds(context.agency_id, source)
        with path.open("rb") as raw:
            self._current = _Position(raw)
            handle: BinaryIO = gzip.GzipFile(fileobj=raw) if gzipped else raw  # type: ignore[assignment]
            lines = read_lines(handle, self.max_line_bytes)
            if start > 0:
                # The line that starts at ``start`` is ours; one that started before is not.
                raw.seek(start - 1)
                lines = read_lines(raw, self.max_line_bytes, start - 1, skip_first=True)
            parser: Parser | None = self.forced
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
                    # A valid line's bytes are its text in UTF-8: hashed as read, not re-encoded.
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
                self.stats.events += 1
                yield event

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
