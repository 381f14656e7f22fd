"""JSON lines: ECS JSON, Winlogbeat and NXLog Windows events, or any other JSON object.

Nested objects are flattened to dotted keys because the event is one flat dict everywhere.
"""

from __future__ import annotations

import re
from typing import Any, Final

from socpipe.collectors.parsers.base import ParseContext, Parser, register
from socpipe.collectors.parsers.windows import windows_event
from socpipe.collectors.timestamps import parse_iso_timestamp
from socpipe.core.envelope import decode
from socpipe.core.event import RESERVED_PREFIXES, Event, content_tags, mark_invalid, new_event, put

# NXLog's im_msvistalog names for the System part; every other key is EventData.
_NXLOG_SYSTEM: Final = {
    "EventID": "EventID",
    "Channel": "Channel",
    "Hostname": "Computer",
    "SourceName": "Provider_Name",
    "ProviderGuid": None,
    "EventTime": "TimeCreated",
    "RecordNumber": "EventRecordID",
    "ProcessID": "ProcessID",
    "UserID": "UserID",
    "SeverityValue": None,
    "Severity": None,
    "EventType": None,
    "Keywords": None,
    "Task": None,
    "Opcode": None,
    "Version": None,
    "ThreadID": None,
    "Category": None,
    "Message": None,
    "EventReceivedTime": None,
    "SourceModuleName": None,
    "SourceModuleType": None,
    "Domain": None,
    "AccountName": None,
    "AccountType": None,
    "OpcodeValue": None,
}


#: Objects nested deeper than this are not flattened: their names would grow with the depth
#: (work and size growing with the square of a line's length) and no log nests so deep.
MAX_DEPTH: Final = 16


def flatten(document: dict[str, Any], too_deep: list[str] | None = None) -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists stay values. An object below
    ``MAX_DEPTH`` levels is left out and its name added to ``too_deep``."""
    flat: dict[str, Any] = {}
    _flatten_into(flat, document, "", 1, too_deep)
    return flat


def _flatten_into(
    flat: dict[str, Any],
    document: dict[str, Any],
    prefix: str,
    depth: int,
    too_deep: list[str] | None,
) -> None:
    for key, value in document.items():
        name = f"{prefix}{key}"
        if not isinstance(value, dict):
            flat[name] = value
        elif depth < MAX_DEPTH:
            _flatten_into(flat, value, name + ".", depth + 1, too_deep)
        elif too_deep is not None:
            too_deep.append(name)


def _lookup(document: dict[str, Any], dotted: str) -> Any:
    """A value by dotted name, whether the JSON nests it (``{"winlog": {...}}``) or not."""
    if dotted in document:
        return document[dotted]
    node: Any = document
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _winlogbeat(line: str, document: dict[str, Any], context: ParseContext) -> Event:
    # Read the few System values and EventData directly: flattening the whole document first
    # cost more than the rest of the Windows mapping.
    winlog = document.get("winlog")
    if isinstance(winlog, dict):
        nested = winlog
        event_data = winlog.get("event_data")
        if not isinstance(event_data, dict):
            # Events that carry UserData (Security 1102, TerminalServices, WMI, AppLocker)
            # have winlog.user_data instead; like the EVTX reader, its values are EventData
            # for rules. Winlogbeat's own copy stays in the document.
            user_data = winlog.get("user_data")
            event_data = _user_data(user_data) if isinstance(user_data, dict) else {}
        data = event_data
    else:  # already-flat keys ("winlog.channel": ...)
        nested = {key[7:]: value for key, value in document.items() if key.startswith("winlog.")}
        prefix = (
            "event_data." if any(key.startswith("event_data.") for key in nested) else "user_data."
        )
        data = {
            key[len(prefix) :]: value for key, value in nested.items() if key.startswith(prefix)
        }
        if prefix == "user_data.":
            data = _user_data(data)
    system = {
        "EventID": nested.get("event_id") or _lookup(document, "event.code"),
        "Channel": nested.get("channel"),
        "Computer": nested.get("computer_name") or _lookup(document, "host.name"),
        "Provider_Name": nested.get("provider_name"),
        "TimeCreated": document.get("@timestamp"),
        "EventRecordID": nested.get("record_id"),
        "ProcessID": _lookup(nested, "process.pid"),
    }
    event = windows_event(line, system, data, context, "windows.winlogbeat")
    # Keep what Winlogbeat added beyond System and EventData (host, agent, winlog.task, ...).
    for key, value in document.items():
        if key in _WINLOGBEAT_OWN:
            continue
        if key == "winlog" and isinstance(value, dict):
            for name, item in value.items():
                if name != "event_data":
                    _keep(event, f"winlog.{name}", item)
        else:
            _keep(event, key, value)
    return event


def _user_data(user_data: dict[str, Any]) -> dict[str, Any]:
    # xml_name is Winlogbeat's name of the UserData element, not one of its values.
    return {name: value for name, value in user_data.items() if name != "xml_name"}


def _keep(event: Event, name: str, value: Any, depth: int = 1) -> None:
    """Add a document's value (flattened) where the mapping did not set one; EventData, the
    event.* fields, the agency and socpipe's own fields and tags stay socpipe's."""
    if isinstance(value, dict):
        if depth >= MAX_DEPTH:
            mark_invalid(event, name)
            return
        for key, item in value.items():
            _keep(event, f"{name}.{key}", item, depth + 1)
    elif name not in event and not name.startswith(_MAPPED_PREFIXES):
        _set_content(event, name, value)


def _set_content(event: Event, name: str, value: Any) -> None:
    """Copy a record's own field, its ``tags`` without any claiming to be socpipe's."""
    if name == "tags":
        value = content_tags(value)
        if not value:
            return
    event[name] = value


# Parts of a Winlogbeat document that windows_event already mapped.
_WINLOGBEAT_OWN: Final = {"@timestamp", "event", "organization", "message"}
_MAPPED_PREFIXES: Final = ("winlog.event_data.", "event.", *RESERVED_PREFIXES)


def _nxlog(line: str, document: dict[str, Any], context: ParseContext) -> Event:
    system: dict[str, Any] = {}
    data: dict[str, Any] = {}
    for key, value in document.items():
        if key in _NXLOG_SYSTEM:
            target = _NXLOG_SYSTEM[key]
            if target:
                system[target] = value
        elif not isinstance(value, (dict, list)):
            data[key] = value
    event = windows_event(line, system, data, context, "windows.nxlog")
    put(event, "message", document.get("Message"))
    return event


def _ecs_or_generic(line: str, flat: dict[str, Any], context: ParseContext) -> Event:
    moment = None
    if isinstance(flat.get("@timestamp"), str):
        moment = parse_iso_timestamp(flat["@timestamp"], context.zone)
    is_ecs = "@timestamp" in flat and moment is not None
    module = flat.get("event.module") or "json"
    dataset = (flat.get("event.dataset") if is_ecs else "json.generic") or "json.log"
    event = new_event(
        line,
        module if isinstance(module, str) else str(module),  # other producers' types vary
        dataset if isinstance(dataset, str) else str(dataset),
        moment or context.reference_time,
    )
    for key, value in flat.items():
        # The agency, socpipe's own fields and the raw record are socpipe's to set; content
        # cannot override them.
        if key in event or key.startswith(RESERVED_PREFIXES) or key == "event.original":
            continue
        _set_content(event, key, value)
    return event


class JsonLinesParser(Parser):
    name = "json"

    def looks_like(self, line: str) -> bool:
        return line.startswith("{") and line.rstrip().endswith("}")

    def parse_line(self, line: str, context: ParseContext) -> Event | None:
        document = _decode(line)
        if document is None:
            return None
        if "winlog" in document or "winlog.channel" in document:
            event = _winlogbeat(line, document, context)
        elif "EventID" in document and ("Channel" in document or "SourceName" in document):
            event = _nxlog(line, document, context)
        else:
            too_deep: list[str] = []
            event = _ecs_or_generic(line, flatten(document, too_deep), context)
            for name in too_deep:
                mark_invalid(event, name)
        return event


# "\x" is never JSON: a line read with invalid UTF-8 has its bytes as "\xNN" escapes
# (collectors/lines.py), which break the string they fall in. An escaped backslash ("\\")
# is matched first, so the "x" of "\\x" is left alone.
_BYTE_ESCAPE: Final = re.compile(r"\\\\|\\x")


def _decode(line: str) -> dict[str, Any] | None:
    """The JSON object of the line; one whose invalid UTF-8 bytes (kept as ``\\xNN``)
    break its strings is read with those escapes kept as text, not lost as a whole."""
    try:
        # The events' own codec: orjson, with the standard library for what orjson refuses.
        return decode(line)
    except ValueError:
        if "\\x" not in line:
            return None
    try:
        return decode(_BYTE_ESCAPE.sub(_keep_escape, line))
    except ValueError:
        return None


def _keep_escape(match: re.Match[str]) -> str:
    text = match.group(0)
    return text if text == "\\\\" else "\\\\x"


register(JsonLinesParser())
