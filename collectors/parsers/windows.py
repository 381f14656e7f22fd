"""Windows event records -> events laid out as Winlogbeat lays them out.

EventData stays under ``winlog.event_data.<Name>`` exactly as Windows wrote it, so SigmaHQ's
Windows rules (written against those names) keep their meaning; common ECS fields are filled
beside it for analysts and alert entities. EVTX files, Winlogbeat JSON and NXLog JSON all end
up here, so one mapping serves every Windows source.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Final

from socpipe.collectors.parsers.base import ParseContext
from socpipe.collectors.timestamps import parse_iso_timestamp
from socpipe.core.event import Event, new_event, put, to_int

# EventData name -> ECS field, for analysts; rules do not depend on these.
_ECS_FROM_EVENT_DATA: Final = {
    "Image": "process.executable",
    "NewProcessName": "process.executable",
    "CommandLine": "process.command_line",
    "ProcessId": "process.pid",
    "NewProcessId": "process.pid",
    "ParentImage": "process.parent.executable",
    "ParentProcessName": "process.parent.executable",
    "ParentCommandLine": "process.parent.command_line",
    "CurrentDirectory": "process.working_directory",
    "TargetFilename": "file.path",
    "ImageLoaded": "file.path",
    "TargetObject": "registry.path",
    "Details": "registry.data.strings",
    "QueryName": "dns.question.name",
    "SourceIp": "source.ip",
    "SourcePort": "source.port",
    "DestinationIp": "destination.ip",
    "DestinationPort": "destination.port",
    "DestinationHostname": "destination.domain",
    "IpAddress": "source.ip",
    "IpPort": "source.port",
    "WorkstationName": "source.domain",
    "TargetUserName": "user.target.name",
    "TargetDomainName": "user.target.domain",
    "SubjectUserName": "user.name",
    "SubjectDomainName": "user.domain",
    "ServiceName": "service.name",
    "ScriptBlockText": "powershell.file.script_block_text",
    "Hashes": "process.hash.raw",
}
# Per EventData name: the ECS field and whether it holds a number (pids and ports).
_ECS_TARGETS: Final = {
    name: (field, field.endswith((".pid", ".port"))) for name, field in _ECS_FROM_EVENT_DATA.items()
}
# Security 4688 describes a process creation with other names than Sysmon 1; Sigma's
# process_creation rules use the Sysmon names, so the 4688 values are also given those.
_PROCESS_CREATION_ALIASES: Final = {
    "NewProcessName": "Image",
    "ParentProcessName": "ParentImage",
    "NewProcessId": "ProcessId",
    "SubjectLogonId": "LogonId",
}
_LEVELS: Final = {
    "0": "information",
    "1": "critical",
    "2": "error",
    "3": "warning",
    "4": "information",
    "5": "verbose",
}
_LOGON_FAILURE_CODES: Final = {"4625", "4771", "4776"}
_LOGON_SUCCESS_CODES: Final = {"4624", "4648"}
_LOGON_CODES: Final = _LOGON_FAILURE_CODES | _LOGON_SUCCESS_CODES


def windows_event(
    original: str,
    system: dict[str, Any],
    event_data: dict[str, Any],
    context: ParseContext,
    dataset: str,
) -> Event:
    """Build the event for one Windows record from its System and EventData parts."""
    moment = _time_created(system.get("TimeCreated"), context)
    event = new_event(original, "windows", dataset, moment)
    code = str(system.get("EventID", "")).strip()
    channel = str(system.get("Channel") or "")
    event["event.code"] = code
    put(event, "winlog.channel", channel)
    put(event, "winlog.provider_name", system.get("Provider_Name"))
    put(event, "winlog.computer_name", system.get("Computer"))
    put(event, "host.name", system.get("Computer"))
    put(event, "winlog.record_id", _text(system.get("EventRecordID")))
    put(event, "winlog.process.pid", system.get("ProcessID"))
    put(event, "winlog.user.identifier", system.get("UserID"))
    put(event, "log.level", _LEVELS.get(str(system.get("Level", ""))))

    data = {
        name: value if type(value) is str else _text(value)
        for name, value in event_data.items()
        if value is not None
    }
    if code == "4688" and channel == "Security":
        for source_name, sigma_name in _PROCESS_CREATION_ALIASES.items():
            if source_name in data and sigma_name not in data:
                data[sigma_name] = data[source_name]
    for name, value in data.items():
        event[f"winlog.event_data.{name}"] = value
        target = _ECS_TARGETS.get(name)
        if target is not None and target[0] not in event:
            ecs_field, numeric = target
            # A number that is not decimal (4688's hexadecimal process ids) stays in
            # EventData only, as before; to_int never raises on what a record holds.
            put(event, ecs_field, to_int(value) if numeric else value)
    if "TargetUserName" in data and code in _LOGON_CODES:
        put(event, "user.name", data["TargetUserName"])
    if code in _LOGON_FAILURE_CODES:
        event["event.category"] = ["authentication"]
        event["event.outcome"] = "failure"
    elif code in _LOGON_SUCCESS_CODES:
        event["event.category"] = ["authentication"]
        event["event.outcome"] = "success"
    return event


# Winlogbeat and the evtx parser already write UTC with a Z: such a time is used as it is.
_UTC_MILLIS: Final = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(?:\d{3,4})?Z")


def _time_created(value: Any, context: ParseContext) -> datetime | str:
    if isinstance(value, dict):
        value = value.get("SystemTime") or value.get("#attributes", {}).get("SystemTime")
    if isinstance(value, str) and _UTC_MILLIS.fullmatch(value):
        return value[:23] + "Z"
    if isinstance(value, str):
        moment = parse_iso_timestamp(value.replace(" ", "T", 1), context.zone)
        if moment is not None:
            return moment
    return context.reference_time


#: Values nested deeper than this (in lists of lists...) are not read: no record nests so,
#: and a crafted JSON line must not make the recursion run out.
_MAX_VALUE_DEPTH: Final = 16


def _text(value: Any, depth: int = 0) -> str:
    if depth > _MAX_VALUE_DEPTH:
        return ""
    if isinstance(value, dict):
        # The evtx crate renders elements with attributes as {"#attributes": ..., "#text": ...}.
        return _text(value.get("#text", ""), depth + 1)
    if isinstance(value, list):
        return ",".join(_text(item, depth + 1) for item in value)
    return str(value)
