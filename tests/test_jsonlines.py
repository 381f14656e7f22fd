"""JSON lines: ECS JSON, Winlogbeat and NXLog Windows events, generic JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from socpipe.collectors.parsers import ParseContext, get_parser, parse_detected
from socpipe.detectors.logsource import event_logsource, routing_key

CONTEXT = ParseContext(agency_id="so-tttt", reference_time=datetime(2026, 3, 10, tzinfo=UTC))


def test_winlogbeat_event() -> None:
    document = {
        "@timestamp": "2026-03-03T03:30:00.000Z",
        "host": {"name": "PC-01"},
        "winlog": {
            "channel": "Microsoft-Windows-Sysmon/Operational",
            "event_id": 1,
            "provider_name": "Microsoft-Windows-Sysmon",
            "computer_name": "PC-01",
            "event_data": {
                "Image": "C:\\Windows\\System32\\cmd.exe",
                "CommandLine": "cmd /c whoami",
                "ProcessId": "42",
            },
        },
    }
    event, parser = parse_detected(json.dumps(document), CONTEXT)
    assert parser.name == "json"
    assert event["event.code"] == "1"
    assert event["winlog.channel"] == "Microsoft-Windows-Sysmon/Operational"
    assert event["winlog.event_data.Image"] == "C:\\Windows\\System32\\cmd.exe"
    assert event["process.executable"] == "C:\\Windows\\System32\\cmd.exe"
    assert event["process.command_line"] == "cmd /c whoami"
    assert event["process.pid"] == 42
    assert event["host.name"] == "PC-01"
    source = event_logsource(routing_key(event))
    assert "process_creation" in source.categories
    assert "sysmon" in source.services


def test_security_4688_gets_sysmon_names_for_process_creation_rules() -> None:
    document = {
        "winlog": {
            "channel": "Security",
            "event_id": 4688,
            "event_data": {"NewProcessName": "C:\\x.exe", "ParentProcessName": "C:\\p.exe"},
        }
    }
    event, _ = parse_detected(json.dumps(document), CONTEXT)
    assert event["winlog.event_data.Image"] == "C:\\x.exe"
    assert event["winlog.event_data.ParentImage"] == "C:\\p.exe"
    assert "process_creation" in event_logsource(routing_key(event)).categories


def test_nxlog_windows_event() -> None:
    document = {
        "EventTime": "2026-03-03 10:30:00",
        "Hostname": "SRV-AD01",
        "EventID": 4625,
        "SourceName": "Microsoft-Windows-Security-Auditing",
        "Channel": "Security",
        "TargetUserName": "administrator",
        "IpAddress": "203.0.113.5",
        "Message": "An account failed to log on.",
    }
    event, _ = parse_detected(json.dumps(document), CONTEXT)
    assert event["event.dataset"] == "windows.nxlog"
    assert event["event.code"] == "4625"
    assert event["winlog.event_data.TargetUserName"] == "administrator"
    assert event["source.ip"] == "203.0.113.5"
    assert event["event.outcome"] == "failure"
    assert event["message"] == "An account failed to log on."
    assert event["@timestamp"] == "2026-03-03T10:30:00.000Z"


def test_ecs_json_is_flattened_and_agency_cannot_be_overridden() -> None:
    document = {
        "@timestamp": "2026-03-03T03:30:00Z",
        "event": {"module": "zeek", "dataset": "zeek.conn", "original": "forged"},
        "source": {"ip": "10.0.0.1", "port": 5000},
        "organization": {"id": "another-agency"},
    }
    line = json.dumps(document)
    event = get_parser("json").parse(line, CONTEXT)
    assert event is not None
    assert event["event.dataset"] == "zeek.conn"
    assert event["source.ip"] == "10.0.0.1"
    assert event["source.port"] == 5000
    assert event["organization.id"] == "so-tttt"
    assert event["event.original"] == line


def test_generic_json_and_non_objects() -> None:
    event = get_parser("json").parse('{"msg": "hello", "nested": {"a": [1, 2]}}', CONTEXT)
    assert event is not None
    assert event["event.dataset"] == "json.generic"
    assert event["nested.a"] == [1, 2]
    assert get_parser("json").parse("[1, 2]", CONTEXT) is None
    assert get_parser("json").parse("{broken", CONTEXT) is None


def test_winlogbeat_with_already_flat_keys() -> None:
    line = json.dumps(
        {
            "winlog.channel": "Security",
            "winlog.event_id": 4720,
            "winlog.event_data.TargetUserName": "support01",
            "host.name": "SRV-AD01",
        }
    )
    event, _ = parse_detected(line, CONTEXT)
    assert event["event.code"] == "4720"
    assert event["winlog.event_data.TargetUserName"] == "support01"
    assert event["host.name"] == "SRV-AD01"
    assert "security" in event_logsource(routing_key(event)).services
