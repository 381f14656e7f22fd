"""Lines built to make parsers do the most work: each format's opening followed by one piece
of its syntax repeated (a keyword, a delimiter, an opening without its closing), then
optionally a closing. A regex that retries from every occurrence of such a piece, or an
unbounded gap before a suffix that never comes, does work that grows with the square of the
line's length on these; a linear parser does not.

A case is ``prefix|piece|suffix`` by name; ``make_input`` builds it at a size and ``work``
parses it as socpipe does: detection, and every parser forced (``--format``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from itertools import product

from socpipe.collectors.parsers import PARSERS, ParseContext, parse_detected

CONTEXT = ParseContext(agency_id="so-tttt", reference_time=datetime(2026, 3, 10, tzinfo=UTC))

PREFIXES = {
    "bsd": "<13>Mar  3 10:00:01 host ",
    "bsd-program": "<13>Mar  3 10:00:01 host prog: ",
    "sshd": "<13>Mar  3 10:00:01 host sshd[1]: ",
    "sudo": "<13>Mar  3 10:00:01 host sudo: ",
    "sudo-header": "<13>Mar  3 10:00:01 host sudo: root : TTY=pts/0 ; PWD=/ ; USER=root ;",
    "su": "<13>Mar  3 10:00:01 host su: ",
    "cron": "<13>Mar  3 10:00:01 host CRON[2]: ",
    "useradd": "<13>Mar  3 10:00:01 host useradd[3]: ",
    "rfc5424": "<13>1 2026-03-03T10:00:00Z host app 1 id ",
    "rfc5424-sd": '<13>1 2026-03-03T10:00:00Z host app 1 id [x@1 a="1" ',
    "cef": "CEF:0|vendor|product|1|100|name|5|",
    "audit": "type=EXECVE msg=audit(1700000000.123:42): ",
    "audit-head": "type=",
    "syslog-audit": "<13>Mar  3 10:00:01 host audit: type=SYSCALL msg=audit(1.1:2): ",
    "access": '1.2.3.4 - - [03/Mar/2026:10:15:32 +0700] "',
    "apache-error": "[Sun Dec 04 04:47:44 2005] [",
    "json": '{"a": "',
}
PIECES = {
    "word": "a",
    "space": " ",
    "paren": "(",
    "word-paren": "a(",
    "bracket": "[",
    "equals": "=",
    "key-equals": "a=",
    "quote": '"',
    "apostrophe": "'",
    "backslash": "\\",
    "colon": ":",
    "digit": "1",
    "digit-colon": "1:",
    "pipe": "|",
    "percent": "%25",
    "brace": "{",
    "type": "type=",
    "audit-msg": "msg='",
    "ssh-failed": "Failed a for ",
    "ssh-accepted": "Accepted a for ",
    "ssh-invalid": "Invalid user a",
    "ssh-from": " from 1 port ",
    "pam-failure": "authentication failure;",
    "pam-session": "session opened for user ",
    "sudo-field": " ; PWD=",
    "sudo-semicolon": " x;",
    "su-failed": "FAILED SU (to ",
    "new-user": "new user: name=",
    "add-user": "add '",
    "sd-param": 'a="',
    "client": "[client 1",
    "cef-key": " a=",
    "json-nest": '{"a":',
}
SUFFIXES = {"none": "", "bracket": "]", "paren": ")", "quote": '"', "brace": "}"}
#: What each suffix closes: it is only worth trying after an opening.
_OPENERS = {"bracket": "[", "paren": "(", "quote": '"', "brace": "{"}

#: Every combination worth measuring: suffixes only where they close something.
CASES = [
    f"{prefix}|{piece}|{suffix}"
    for prefix, piece, suffix in product(PREFIXES, PIECES, SUFFIXES)
    if suffix == "none" or _OPENERS[suffix] in PREFIXES[prefix] + PIECES[piece]
]
#: Deliberately quadratic work, to show the measurement tells it apart.
CONTROL = "control|quadratic|none"


def make_input(case: str, size: int) -> str:
    prefix, piece, suffix = case.split("|")
    if prefix == "control":
        return "a" * size
    text = PIECES[piece]
    return PREFIXES[prefix] + text * (size // len(text) + 1) + SUFFIXES[suffix]


def work(case: str, line: str) -> None:
    if case == CONTROL:
        re.findall(r"[a-z]+=", line)  # retries the whole run from every position
        return
    parse_detected(line, CONTEXT)
    for parser in PARSERS.values():
        parser.parse(line, CONTEXT)
