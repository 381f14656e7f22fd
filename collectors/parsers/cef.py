"""ArcSight Common Event Format, as firewalls, IDS/IPS and WAFs send it.

Escaping differs between the header (``\\|`` and ``\\\\``) and the extension (``\\=``,
``\\\\``, ``\\n``, ``\\r``; a bare ``|`` is literal there), so the two parts are parsed apart.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo
from typing import Final

from socpipe.collectors.parsers.base import ParseContext, Parser, register
from socpipe.collectors.timestamps import parse_epoch
from socpipe.core.event import Event, format_timestamp, mark_invalid, new_event, put, to_int

_HEADER_FIELDS: Final = (
    "cef.version",
    "observer.vendor",
    "observer.product",
    "observer.version",
    "event.code",
    "cef.name",
    "cef.severity",
)
# A key follows whitespace (the text is searched with a space in front, for the first key): a
# pattern that starts with a character class lets the regex engine skip to candidates, where
# "start or lookbehind" was tried at every position and cost twice as much. The key is
# followed by an unescaped '=' (checked apart).
_EXTENSION_KEY: Final = re.compile(r"\s([A-Za-z0-9_.\[\]-]+)=")
_EXTENSION_ESCAPES: Final = re.compile(r"\\([\\=nr])")
_UNESCAPE: Final = {"\\": "\\", "=": "=", "n": "\n", "r": "\r"}

# CEF extension key -> ECS field. Keys not listed are kept as cef.extensions.<key>.
_ECS_FROM_EXTENSION: Final = {
    "src": "source.ip",
    "spt": "source.port",
    "shost": "source.domain",
    "smac": "source.mac",
    "suser": "source.user.name",
    "dst": "destination.ip",
    "dpt": "destination.port",
    "dhost": "destination.domain",
    "dmac": "destination.mac",
    "duser": "destination.user.name",
    "proto": "network.transport",
    "app": "network.protocol",
    "act": "event.action",
    "outcome": "event.outcome",
    "request": "url.original",
    "requestMethod": "http.request.method",
    "requestClientApplication": "user_agent.original",
    "msg": "message",
    "fname": "file.name",
    "filePath": "file.path",
    "fileHash": "file.hash.sha256",
    "cat": "cef.category",
    "dvchost": "observer.hostname",
    "dvc": "observer.ip",
    "in": "source.bytes",
    "out": "destination.bytes",
    "cs1": "cef.cs1",
    "cs2": "cef.cs2",
}
_INTEGER_FIELDS: Final = {"source.port", "destination.port", "source.bytes", "destination.bytes"}
_SEVERITY_WORDS: Final = {"low": 3, "medium": 5, "high": 8, "very-high": 10, "unknown": 0}


def split_header(text: str) -> tuple[list[str], str] | None:
    """The seven header fields (unescaped) and the raw extension; ``None`` if too few fields."""
    fields: list[str] = []
    current: list[str] = []
    start = text.find("CEF:")
    if start < 0:
        return None
    position = start + 4
    parts = text[position:].split("|", 7)
    if len(parts) == 8 and "\\" not in text[position : len(text) - len(parts[7])]:
        # No escapes in the header (the common case): a plain split is exact.
        return parts[:7], parts[7]
    while position < len(text) and len(fields) < 7:
        char = text[position]
        if char == "\\" and position + 1 < len(text) and text[position + 1] in "|\\":
            current.append(text[position + 1])
            position += 2
            continue
        if char == "|":
            fields.append("".join(current))
            current = []
        else:
            current.append(char)
        position += 1
    if len(fields) < 7:
        return None
    return fields, text[position:]


def parse_extension(text: str) -> dict[str, str]:
    """Key/value pairs of the extension; values may contain spaces and escaped '='."""
    padded = " " + text
    if "\\" not in text:
        # No escapes (the common case): every "key=" is a real key and values need no work.
        keys = list(_EXTENSION_KEY.finditer(padded))
        return {
            match.group(1): padded[
                match.end() : keys[i + 1].start(1) if i + 1 < len(keys) else len(padded)
            ].rstrip(" ")
            for i, match in enumerate(keys)
        }
    pairs: dict[str, str] = {}
    matches = [
        match
        for match in _EXTENSION_KEY.finditer(padded)
        if not _preceded_by_escape(padded, match.end() - 1)
    ]
    for index, match in enumerate(matches):
        end = matches[index + 1].start(1) if index + 1 < len(matches) else len(padded)
        raw = padded[match.end() : end].rstrip(" ")
        pairs[match.group(1)] = _EXTENSION_ESCAPES.sub(lambda m: _UNESCAPE[m.group(1)], raw)
    return pairs


def _preceded_by_escape(text: str, position: int) -> bool:
    backslashes = 0
    while position - backslashes - 1 >= 0 and text[position - backslashes - 1] == "\\":
        backslashes += 1
    return backslashes % 2 == 1


def _severity(value: str) -> int | None:
    number = to_int(value)
    return number if number is not None else _SEVERITY_WORDS.get(value.lower())


def _receipt_time(value: str, zone: tzinfo) -> datetime | None:
    """``rt``: epoch milliseconds (or seconds), or ``MMM dd yyyy HH:mm:ss[.SSS]`` in the
    zone of times without an offset."""
    number = to_int(value)
    if number is not None:
        return parse_epoch(str(number / 1000) if len(value) >= 12 else value)
    if len(value) > 32:
        return None  # longer than any of these layouts: strptime need not read it
    for layout in ("%b %d %Y %H:%M:%S", "%b %d %Y %H:%M:%S.%f"):
        try:
            return datetime.strptime(value, layout).replace(tzinfo=zone)
        except ValueError:
            continue
    return None


def apply_cef(event: Event, text: str, zone: tzinfo = UTC) -> bool:
    """Add the fields of a CEF record to ``event``; ``False`` when ``text`` is not valid CEF."""
    split = split_header(text)
    if split is None:
        return False
    header, extension = split
    event["event.module"] = "cef"
    event["event.dataset"] = "cef.log"
    for field, value in zip(_HEADER_FIELDS, header, strict=True):
        put(event, field, value)
    event["event.reason"] = header[5]
    severity = _severity(header[6])
    if severity is not None:
        event["event.severity"] = severity
    for key, value in parse_extension(extension).items():
        field = _ECS_FROM_EXTENSION.get(key, f"cef.extensions.{key}")
        if field in _INTEGER_FIELDS:
            number = to_int(value)
            if number is not None:
                event[field] = number
            elif value:
                # Kept as sent beside the typed field, which stays empty.
                event[f"cef.extensions.{key}"] = value
                mark_invalid(event, field)
            continue
        put(event, field, value)
        if key == "rt":
            moment = _receipt_time(value, zone)
            if moment is not None:
                # The device's own event time beats the relay's syslog header time.
                event["@timestamp"] = format_timestamp(moment)
            else:
                mark_invalid(event, field)
    event.setdefault("message", header[5])
    return True


class CefParser(Parser):
    name = "cef"

    def looks_like(self, line: str) -> bool:
        return line.startswith("CEF:")

    def parse_line(self, line: str, context: ParseContext) -> Event | None:
        event = new_event(line, "cef", "cef.log", context.reference_time)
        if not apply_cef(event, line, context.zone):
            return None
        return event


register(CefParser())
