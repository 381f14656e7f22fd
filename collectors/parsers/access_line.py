"""The fields of a web access log line (Common/Combined Log Format, Apache vhost_combined).

The regexes are the definition. Matching and reading their groups took about 2 µs of a web
line's 5 µs of parsing, so lines without backslashes (nearly all: a backslash only appears
where the server escaped a quote or a control character) are split with string methods
first. That fast path answers only when it is sure and hands everything else (escapes,
vhost prefixes, odd whitespace) to the regexes; tests check it against them on real and
random lines.
"""

from __future__ import annotations

import re

#: vhost, client, user, time, request, status, bytes, referrer, agent.
AccessFields = tuple[str | None, str, str, str, str, str, str, str | None, str | None]

# Quoted fields use the unrolled form [^"\\]*(?:\\.[^"\\]*)*: it runs in one pass where an
# alternation per character would cost several times more on every line.
_QUOTED = r'[^"\\]*(?:\\.[^"\\]*)*'
_ACCESS_BODY = (
    r"(?P<client>\S+) (?P<ident>\S+) (?P<user>\S+) \[(?P<time>[^\]]+)\] "
    rf'"(?P<request>{_QUOTED})" (?P<status>\d{{3}}|-) (?P<bytes>\d+|-)'
    rf'(?: "(?P<referrer>{_QUOTED})" "(?P<agent>{_QUOTED})")?'
)
ACCESS = re.compile(_ACCESS_BODY)
# Apache's vhost_combined: the virtual host (and port) comes first.
ACCESS_VHOST = re.compile(r"(?P<vhost>[^\s:]+)(?::\d+)? " + _ACCESS_BODY)


def split_access_line(line: str) -> AccessFields | None:
    """The fields of ``line``, or ``None`` when it is not an access log line."""
    fast = split_common_access(line)
    if fast is not None:
        return fast
    match = ACCESS.match(line) or ACCESS_VHOST.match(line)
    if match is None:
        return None
    vhost = match["vhost"] if "vhost" in match.re.groupindex else None
    return (
        vhost,
        match["client"],
        match["user"],
        match["time"],
        match["request"],
        match["status"],
        match["bytes"],
        match["referrer"],
        match["agent"],
    )


def split_common_access(line: str) -> AccessFields | None:
    """The fields of a line in the common shape, or ``None`` to let the regexes decide."""
    if "\\" in line:
        return None
    first = line.find(" ")
    second = line.find(" ", first + 1)
    third = line.find(" ", second + 1)
    if not 0 < first < second - 1 < third - 2:
        return None
    head = line[:third]
    if not head.isprintable() or not line.startswith(" [", third):
        return None
    time_end = line.find("]", third + 2)
    if time_end <= third + 2 or not line.startswith('] "', time_end):
        return None
    request_end = line.find('"', time_end + 3)
    if request_end < 0 or line[request_end + 1 : request_end + 2] != " ":
        return None
    status_start = request_end + 2
    status = line[status_start : status_start + 3]
    if line[status_start : status_start + 1] == "-":
        status = "-"
    elif len(status) != 3 or not status.isdecimal():
        return None
    bytes_start = status_start + len(status) + 1
    if line[bytes_start - 1 : bytes_start] != " ":
        return None
    bytes_end = _decimal_end(line, bytes_start)
    if bytes_end == bytes_start:
        if line[bytes_start : bytes_start + 1] != "-":
            return None
        bytes_end += 1
    referrer, agent = _referrer_and_agent(line, bytes_end)
    return (
        None,
        line[:first],
        line[second + 1 : third],
        line[third + 2 : time_end],
        line[time_end + 3 : request_end],
        status,
        line[bytes_start:bytes_end],
        referrer,
        agent,
    )


def _decimal_end(line: str, start: int) -> int:
    end = start
    while end < len(line) and line[end].isdecimal():
        end += 1
    return end


def _referrer_and_agent(line: str, start: int) -> tuple[str | None, str | None]:
    """The optional ``"referrer" "agent"`` pair right after the byte count (no escapes)."""
    if not line.startswith(' "', start):
        return None, None
    referrer_end = line.find('"', start + 2)
    if referrer_end < 0 or not line.startswith(' "', referrer_end + 1):
        return None, None
    agent_end = line.find('"', referrer_end + 3)
    if agent_end < 0:
        return None, None
    return line[start + 2 : referrer_end], line[referrer_end + 3 : agent_end]
