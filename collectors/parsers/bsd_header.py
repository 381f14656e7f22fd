"""The RFC 3164 (BSD) syslog header: ``<PRI>Mmm dd HH:MM:SS host program[pid]: message``.

The header regex is the definition. Matching it took 1.2-1.7 µs per line, a tenth of a Linux
line's whole budget, so the common shape (optional PRI, a 14-15 character time, plain host
and program tokens) is split with string methods first. That fast path answers only when it
is sure and hands everything unusual (fractional seconds, tabs, control characters,
``prog(sub)`` programs) to the regex; tests check it against the regex on real and random
lines.
"""

from __future__ import annotations

import re

#: pri, time, host, program, pid, message.
BsdHeader = tuple[str | None, str, str | None, str | None, str | None, str]

_PRI = r"(?:<(?P<pri>\d{1,3})>)?"
# The program part is optional (kernel lines from some daemons omit it) and may carry a
# "(pam_unix)" style suffix.
BSD_HEADER = re.compile(
    _PRI + r"(?P<ts>[A-Z][a-z]{2} +\d{1,2} \d{2}:\d{2}:\d{2}(?:\.\d+)?) "
    r"(?:(?P<host>[^\s:\[]+) )?"
    r"(?:(?!CEF:)(?P<prog>[^\s:\[]+?)(?:\((?P<sub>[^)]*)\))?(?:\[(?P<pid>\d+)\])?: ?)?"
    r"(?P<msg>.*)\Z",
    re.DOTALL,
)


def split_bsd_header(line: str) -> BsdHeader | None:
    """The header fields of ``line``, or ``None`` when it is not a BSD syslog line."""
    fast = split_common_header(line)
    if fast is not None:
        return fast
    match = BSD_HEADER.match(line)
    if match is None:
        return None
    return match["pri"], match["ts"], match["host"], match["prog"], match["pid"], match["msg"]


def split_common_header(line: str) -> BsdHeader | None:
    """The header of a line in the common shape, or ``None`` to let the regex decide."""
    pri: str | None = None
    start = 0
    if line.startswith("<"):
        close = line.find(">", 1, 5)
        if close < 2 or not line[1:close].isdecimal():
            return None
        pri = line[1:close]
        start = close + 1
    stamp = _time_end(line, start)
    if stamp < 0:
        return None
    position = stamp + 1
    host: str | None = None
    space = line.find(" ", position)
    token = line[position:space] if space >= 0 else line[position:]
    if not token.isprintable():
        return None
    if space > position and ":" not in token and "[" not in token:
        host = token
        position = space + 1
    program = _program(line, position)
    if program is None:
        return None
    prog, pid, message_start = program
    return pri, line[start:stamp], host, prog, pid, line[message_start:]


def _time_end(line: str, start: int) -> int:
    """Where ``Mmm dd HH:MM:SS`` (or ``Mmm  d``/``Mmm d``) starting at ``start`` ends (the index
    of the space after it), or -1 for any other shape."""
    month = line[start : start + 4]
    if len(month) < 4 or month[3] != " ":
        return -1
    if not ("A" <= month[0] <= "Z" and "a" <= month[1] <= "z" and "a" <= month[2] <= "z"):
        return -1
    day = start + 4
    if line[day : day + 1] == " ":  # "Mar  3": the day padded with a space
        day += 1
        digits = 1
    elif line[day + 1 : day + 2] == " ":  # "Mar 3"
        digits = 1
    else:
        digits = 2
    if not line[day : day + digits].isdecimal() or line[day + digits : day + digits + 1] != " ":
        return -1
    clock_start = day + digits + 1
    clock = line[clock_start : clock_start + 8]
    if len(clock) != 8 or clock[2] != ":" or clock[5] != ":":
        return -1
    if not (clock[:2] + clock[3:5] + clock[6:]).isdecimal():
        return -1
    end = clock_start + 8
    return end if line[end : end + 1] == " " else -1


def _program(line: str, start: int) -> tuple[str | None, str | None, int] | None:
    """``(program, pid, where the message starts)``, or ``None`` to let the regex decide."""
    if line.startswith("CEF:", start):
        return None, None, start
    space = line.find(" ", start)
    segment = line[start:space] if space >= 0 else line[start:]
    colon = segment.find(":")
    bracket = segment.find("[")
    ends = [index for index in (colon, bracket) if index >= 0]
    end = min(ends) if ends else len(segment)
    name = segment[:end]
    if not name.isprintable() or "(" in name:
        return None
    if not name:
        return None, None, start
    after = start + end
    if colon == end:
        pid = None
        message = after + 1
    elif bracket == end:
        close = line.find("]", after)
        digits = line[after + 1 : close] if close > after else ""
        if not digits.isdecimal() or line[close + 1 : close + 2] != ":":
            return None, None, start
        pid = digits
        message = close + 2
    else:
        return None, None, start
    if line[message : message + 1] == " ":
        message += 1
    return name, pid, message
