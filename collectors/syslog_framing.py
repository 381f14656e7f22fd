"""Cutting a TCP syslog stream into messages (RFC 6587), fed in pieces as they arrive.

Each frame is either octet-counted (``LEN SP MSG``) or a line ended by ``\\n``
(non-transparent framing); a sender may mix them. The framer holds at most one frame of
``max_frame_bytes`` whatever a client sends: a frame longer than the cap is handed out as
soon as the cap is reached, marked truncated, and the rest of it is counted off and
discarded as it arrives, never kept and never handed out as a message of its own (the tail of
a padded line is text an attacker chose). An octet count is at most 10 digits; a longer run
of digits is the start of a line.

No I/O here: the listener feeds what it reads, so the rules can be tested (and fuzzed) on
any cut of any input.
"""

from __future__ import annotations

from typing import Final, NamedTuple

#: Digits of an octet count (RFC 6587 allows any; 10 covers every length a cap allows).
MAX_COUNT_DIGITS: Final = 10

_START: Final = 0  # between frames
_COUNT: Final = 1  # reading the digits of an octet count
_OCTETS: Final = 2  # reading an octet-counted message
_LINE: Final = 3  # reading a newline-ended message
_SKIP_OCTETS: Final = 4  # discarding the rest of an over-long octet-counted message
_SKIP_LINE: Final = 5  # discarding the rest of an over-long line


class Frame(NamedTuple):
    #: The message, at most ``max_frame_bytes`` bytes.
    data: bytes
    #: The message was longer than the cap (``data`` is its beginning) or the stream ended
    #: before the length its octet count announced.
    truncated: bool


class SyslogFramer:
    """The frames of one stream. ``feed`` returns the frames each piece completes;
    ``finish`` the last one when the stream ends."""

    def __init__(self, max_frame_bytes: int) -> None:
        if max_frame_bytes < 1:
            raise ValueError("max_frame_bytes must be at least 1")
        self.max_frame_bytes = max_frame_bytes
        self._state = _START
        self._held = bytearray()
        #: Octets of the current octet-counted frame still to come.
        self._remaining = 0

    @property
    def buffered_bytes(self) -> int:
        """Bytes held for an unfinished frame: never more than the cap plus a count."""
        return len(self._held)

    def feed(self, data: bytes) -> list[Frame]:
        frames: list[Frame] = []
        position = 0
        end = len(data)
        cap = self.max_frame_bytes
        while position < end:
            state = self._state
            if state == _START:
                if 48 <= data[position] <= 57:  # an ASCII digit: maybe an octet count
                    self._state = _COUNT
                else:
                    self._state = _LINE
            elif state == _COUNT:
                position = self._read_count(data, position, frames)
            elif state in (_OCTETS, _SKIP_OCTETS):
                take = min(self._remaining, end - position)
                if state == _OCTETS:
                    room = cap - len(self._held)
                    self._held += data[position : position + min(take, room)]
                    if take > room:
                        frames.append(Frame(bytes(self._held), True))
                        self._held.clear()
                        self._state = _SKIP_OCTETS
                position += take
                self._remaining -= take
                if self._remaining == 0:
                    if self._state == _OCTETS:
                        frames.append(Frame(bytes(self._held), False))
                        self._held.clear()
                    self._state = _START
            else:
                newline = data.find(b"\n", position)
                stop = end if newline < 0 else newline
                if state == _LINE:
                    room = cap - len(self._held)  # negative after many digits and a tiny cap
                    if stop - position > room:
                        self._held += data[position : position + max(room, 0)]
                        frames.append(Frame(bytes(self._held[:cap]), True))
                        self._held.clear()
                        self._state = _SKIP_LINE
                    else:
                        self._held += data[position:stop]
                        if newline >= 0:
                            frames.append(_line_frame(self._held))
                            self._held.clear()
                if newline < 0:
                    break
                position = newline + 1
                self._state = _START
        return frames

    def _read_count(self, data: bytes, position: int, frames: list[Frame]) -> int:
        """Digits of an octet count, up to its space; anything else makes them a line's start."""
        end = len(data)
        while position < end and 48 <= data[position] <= 57:
            if len(self._held) == MAX_COUNT_DIGITS:
                self._state = _LINE  # too many digits for a count: a line that starts so
                return position
            self._held.append(data[position])
            position += 1
        if position == end:
            return position
        if data[position] != 32:  # not "LEN SP": a line starting with digits
            self._state = _LINE
            return position
        self._remaining = int(self._held)
        self._held.clear()
        self._state = _OCTETS if self._remaining else _START
        if not self._remaining:
            frames.append(Frame(b"", False))
        return position + 1

    def finish(self) -> Frame | None:
        """The frame the stream ended in: a last line without its newline (complete), an
        octet-counted frame cut short (truncated); None between frames or while skipping."""
        state, held = self._state, bytes(self._held)
        self._state = _START
        self._held.clear()
        if state in (_LINE, _COUNT):
            if len(held) > self.max_frame_bytes:
                return Frame(held[: self.max_frame_bytes], True)
            return _line_frame(held) if held else None
        if state == _OCTETS:
            return Frame(held, True)
        return None


def _line_frame(line: bytearray | bytes) -> Frame:
    end = len(line)
    if end and line[end - 1] == 13:  # a "\r\n" terminator
        end -= 1
    return Frame(bytes(line[:end]), False)
