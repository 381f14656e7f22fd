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
from typing import Final

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
ACCESS: Final = re.compile(_ACCESS_BODY)
# Apache's vhost_combined: the virtual host (and port) comes first.
ACCESS_VHOST: Final = re.compile(r"(?P<vhost>[^\s:]+)(?::\d+)? " + _ACCESS_BODY)


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
    """The fields of a line in the common shape, or ``None`` to let the regexes decide.

    Written as a few ``split``/``partition`` calls, each one C call: compiled, a method call
    costs more than the scanning it does, so fewer and larger steps are faster.
    """
    if "\\" in line:
        return None
    parts = line.split(" ", 3)
    if len(parts) != 4:
        return None
    client, ident, user, rest = parts
    if not (client and ident and user and rest.startswith("[")):
        return None
    # The three tokens are runs of non-space characters: no whitespace other than the
    # separators (every whitespace character is unprintable).
    if not line[: len(client) + len(ident) + len(user) + 2].isprintable():
        return None
    stamp, separator, rest = rest.partition('] "')
    if not separator or len(stamp) < 2 or "]" in stamp:
        return None
    request, separator, rest = rest.partition('" ')
    if not separator or '"' in request:
        return None
    status, separator, rest = rest.partition(" ")
    if not separator or not (status == "-" or (len(status) == 3 and status.isdecimal())):
        return None
    size, separator, rest = rest.partition(" ")
    if not (size == "-" or size.isdecimal()):
        return None
    referrer: str | None = None
    agent: str | None = None
    if rest.startswith('"'):
        quoted, separator, tail = rest[1:].partition('" "')
        if separator and '"' not in quoted:
            text, closing, _ = tail.partition('"')
            if closing:
                referrer, agent = quoted, text
    return None, client, user, stamp[1:], request, status, size, referrer, agent
