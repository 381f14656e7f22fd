"""Syslog, RFC 3164 (BSD) and RFC 5424, with program-specific message parsing.

The header gives time, host and program; the message is then handed to the parser for that
program (sshd, sudo, cron, ...) because Sigma rules need the fields inside the message.
Embedded formats (CEF, audit records) sent over syslog are parsed as such.
"""

from __future__ import annotations

import re
from typing import Final

from socpipe.collectors.parsers.base import ParseContext, Parser, register
from socpipe.collectors.parsers.linux_programs import enrich_program_message
from socpipe.collectors.timestamps import ORIGINAL_TIMESTAMP, bsd_to_iso, parse_iso_timestamp
from socpipe.core.event import Event, mark_invalid, new_event, put, put_int, to_int

_PRI = r"(?:<(?P<pri>\d{1,3})>)?"
# "Mmm dd HH:MM:SS host program[pid]: message"; the program part is optional (kernel lines
# from some daemons omit it) and may carry a "(pam_unix)" style suffix.
_BSD: Final = re.compile(
    _PRI + r"(?P<ts>[A-Z][a-z]{2} +\d{1,2} \d{2}:\d{2}:\d{2}(?:\.\d+)?) "
    r"(?:(?P<host>[^\s:\[]+) )?"
    # The program ends before a "(" or at the end of its run, the shortest way that lets the
    # rest match: a lazy "[^\s:\[]+?" said the same, but tried the rest after every character.
    # Each "(" of the program is tried as the start of its suffix, whose scan for ")" may run
    # to the end of the line: after the first, at most 8 are, or a line of "(" took time
    # growing with the square of its length.
    r"(?:(?!CEF:)(?P<prog>[^\s:\[][^\s:\[(]*+(?:\([^\s:\[(]*+){0,8}?)"
    r"(?:\((?P<sub>[^)]*)\))?(?:\[(?P<pid>\d+)\])?: ?)?"
    r"(?P<msg>.*)\Z",
    re.DOTALL,
)
_RFC5424: Final = re.compile(
    r"<(?P<pri>\d{1,3})>1 (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) (?P<procid>\S+) "
    r"(?P<msgid>\S+) (?P<rest>.*)\Z",
    re.DOTALL,
)
# A name starts where the previous character cannot be part of one: findall otherwise tried
# a name at every character of a long run without "=" (quadratic).
_SD_PARAM: Final = re.compile(r'(?<![^\s=\]"])([^\s=\]"]+)="((?:[^"\\\]]|\\.)*)"')


def _put_priority(event: Event, pri: str | None) -> None:
    if pri is None:
        return
    value = int(pri)
    event["log.syslog.priority"] = value
    event["log.syslog.facility.code"] = value >> 3
    event["log.syslog.severity.code"] = value & 7


def split_structured_data(rest: str) -> tuple[dict[str, dict[str, str]], str] | None:
    """Split RFC 5424 ``STRUCTURED-DATA MSG``; ``None`` when the structured data is malformed.

    Brackets inside quoted values are legal (escaped as ``\\]``), so this walks the text rather
    than splitting on ``]``.
    """
    if rest.startswith("-"):
        return {}, rest[2:] if rest.startswith("- ") else rest[1:]
    elements: dict[str, dict[str, str]] = {}
    position = 0
    while position < len(rest) and rest[position] == "[":
        end = position + 1
        in_quotes = False
        while end < len(rest):
            char = rest[end]
            if char == "\\":
                end += 2
                continue
            if char == '"':
                in_quotes = not in_quotes
            elif char == "]" and not in_quotes:
                break
            end += 1
        if end >= len(rest):
            return None
        body = rest[position + 1 : end]
        sd_id, _, params = body.partition(" ")
        elements[sd_id] = {
            key: re.sub(r"\\([\"\\\]])", r"\1", value) for key, value in _SD_PARAM.findall(params)
        }
        position = end + 1
    message = rest[position:]
    return elements, message[1:] if message.startswith(" ") else message


def _finish(event: Event, message: str, program: str | None, context: ParseContext) -> Event:
    event["message"] = message
    if program:
        event["process.name"] = program
    enrich_program_message(event, program or "", message, context.audit, context.zone)
    return event


class Rfc5424Parser(Parser):
    name = "syslog5424"

    def looks_like(self, line: str) -> bool:
        return line.startswith("<") and ">1 " in line[:8]

    def parse_line(self, line: str, context: ParseContext) -> Event | None:
        match = _RFC5424.match(line)
        if not match:
            return None
        split = split_structured_data(match["rest"])
        if split is None:
            return None
        structured, message = split
        message = message.removeprefix("\ufeff")
        stamp = match["ts"]
        moment = parse_iso_timestamp(stamp, context.zone) if stamp != "-" else None
        event = new_event(line, "system", "system.syslog", moment or context.reference_time)
        if moment is None and stamp != "-":
            mark_invalid(event, "@timestamp")
            event[ORIGINAL_TIMESTAMP] = stamp
        _put_priority(event, match["pri"])
        put(event, "host.name", match["host"])
        put(event, "log.syslog.appname", match["app"])
        put(event, "log.syslog.procid", match["procid"])
        put(event, "log.syslog.msgid", match["msgid"])
        procid = to_int(match["procid"])
        if procid is not None:
            event["process.pid"] = procid
        for sd_id, params in structured.items():
            for key, value in params.items():
                event[f"log.syslog.structured_data.{sd_id}.{key}"] = value
        app = match["app"] if match["app"] != "-" else None
        return _finish(event, message, app, context)


class Rfc3164Parser(Parser):
    name = "syslog"

    def looks_like(self, line: str) -> bool:
        start = line.find(">") + 1 if line.startswith("<") else 0
        head = line[start : start + 3]
        return head[:1].isupper() and head[1:3].islower() and len(line) > 15

    def parse_line(self, line: str, context: ParseContext) -> Event | None:
        match = _BSD.match(line)
        if not match:
            return None
        # One call for all groups: each match["name"] is a lookup and a call of its own.
        pri, stamp, host, program, _suffix, pid, message = match.groups()
        moment = bsd_to_iso(stamp, context.reference_time, context.zone)
        if moment is None:
            return None
        event = new_event(line, "system", "system.syslog", moment)
        _put_priority(event, pri)
        put(event, "host.name", host)
        put_int(event, "process.pid", pid)
        put(event, "log.syslog.appname", program)
        return _finish(event, message, program, context)


register(Rfc5424Parser())
register(Rfc3164Parser())
