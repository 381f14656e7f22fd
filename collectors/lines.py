"""Cutting a byte stream into log lines: the one reader of lines that the scan and the file
follower share.

Lines end at ``\\n`` (a ``\\r`` before it is dropped). A line longer than the cap keeps its
first ``max_line_bytes`` bytes, is marked truncated, and the rest of it up to its newline is
skipped: never returned as a line of its own, because the tail of a padded line is text an
attacker chose (a forged sshd record after a megabyte of padding). A last line without a
newline is held back while the input may still grow (a followed file) and returned by
``finish`` once it cannot (the end of a scanned file, a rotated log).

Memory is bounded by the cap: at most one unfinished line of ``max_line_bytes`` is held,
whatever the input.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO, Final, NamedTuple

#: Lines longer than this are truncated (256 KiB: far above any real log record).
DEFAULT_MAX_LINE_BYTES: Final = 256 * 1024
#: Bytes read at a time.
READ_BYTES: Final = 1 << 20


class Line(NamedTuple):
    #: Where the line starts in the input.
    offset: int
    #: The line without its terminator; at most ``max_line_bytes`` bytes.
    data: bytes
    #: The line was longer than the cap and ``data`` is its beginning.
    truncated: bool


class LineSplitter:
    """Cuts bytes fed in any pieces into lines, keeping exact offsets across pieces.

    ``resume_offset`` is where reading must start again to get every line not yet returned
    (and, while the tail of a truncated line is being skipped, that line again: a restart
    then gives the same truncated line, never its tail).
    """

    def __init__(self, max_line_bytes: int, offset: int = 0, skip_first: bool = False) -> None:
        """``offset`` is where the first byte fed sits in the input. ``skip_first`` drops
        everything up to and including the first newline: a reader that starts inside a file
        (a part of a parallel scan) leaves the line it lands in to the part it started in."""
        if max_line_bytes < 1:
            raise ValueError("max_line_bytes must be at least 1")
        self.max_line_bytes = max_line_bytes
        #: Input offset of the next byte to be fed.
        self.position = offset
        self._pending = b""
        #: Input offset where the pending (or skipped) line starts.
        self._line_start = offset
        self._skipping = skip_first

    @property
    def resume_offset(self) -> int:
        return self._line_start

    def feed(self, chunk: bytes) -> list[Line]:
        """The lines completed by ``chunk`` (and a truncated one that outgrew the cap)."""
        lines: list[Line] = []
        start = 0
        chunk_offset = self.position
        self.position += len(chunk)
        if self._skipping:
            newline = chunk.find(b"\n")
            if newline < 0:
                return lines
            self._skipping = False
            start = newline + 1
            self._line_start = chunk_offset + start
        if self._pending:
            data = self._pending + chunk[start:]
            self._pending = b""
        else:
            data = chunk[start:] if start else chunk
        parts = data.split(b"\n")
        last = parts.pop()
        line_start = self._line_start
        cap = self.max_line_bytes
        for part in parts:
            following = line_start + len(part) + 1
            if len(part) > cap:
                lines.append(Line(line_start, part[:cap], True))
            else:
                lines.append(Line(line_start, part.rstrip(b"\r"), False))
            line_start = following
        self._line_start = line_start
        if len(last) > cap:
            # Returned now, so memory stays bounded; its tail is skipped up to its newline.
            lines.append(Line(line_start, last[:cap], True))
            self._skipping = True
        else:
            self._pending = last
        return lines

    def finish(self) -> Line | None:
        """The last line when the input ended without a newline (None if it did not)."""
        pending, self._pending = self._pending, b""
        if self._skipping or not pending:
            return None
        line = Line(self._line_start, pending.rstrip(b"\r"), False)
        self._line_start = self.position
        return line


def read_lines(
    handle: BinaryIO,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    offset: int = 0,
    skip_first: bool = False,
) -> Iterator[Line]:
    """Every line of a stream to its end, ``offset`` being the handle's position."""
    splitter = LineSplitter(max_line_bytes, offset, skip_first)
    while chunk := handle.read(READ_BYTES):
        yield from splitter.feed(chunk)
    last = splitter.finish()
    if last is not None:
        yield last


def decode_line(raw: bytes) -> tuple[str, bool]:
    """Text for the line and whether it was valid UTF-8 (invalid bytes become ``\\xNN``)."""
    try:
        return raw.decode("utf-8"), True
    except UnicodeDecodeError:
        return raw.decode("utf-8", "backslashreplace"), False
