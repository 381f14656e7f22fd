"""SigmaHQ's Windows rules against the field names Windows and Winlogbeat write.

Windows Defender names its EventData with spaces ("Threat Name", "New Value"), where SigmaHQ
writes NewValue or Feature_Name; events that carry UserData (TerminalServices, WMI) reach
Winlogbeat's JSON as winlog.user_data. One test per channel shows that a SigmaHQ rule from
../shared/data/sigma matches a realistic event of that channel, and a near miss does not.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaRule

from socpipe.collectors.parsers import ParseContext, parse_detected
from socpipe.detectors.engine import SigmaEngine
from socpipe.detectors.rules import load_field_mappings, load_rules
from tests.conftest import shared_data

CONTEXT = ParseContext(agency_id="so-tttt", reference_time=datetime(2026, 3, 10, tzinfo=UTC))
DEFENDER = ("Microsoft-Windows-Windows Defender/Operational", "Microsoft-Windows-Windows Defender")
HOST = "PC-KETOAN-01.sotttt.local"


def winlogbeat(
    code: int, channel: str, provider: str, data: dict[str, Any], key: str = "event_data"
) -> str:
    """A Winlogbeat 8 document as the agency's Winlogbeat ships it."""
    return json.dumps(
        {
            "@timestamp": "2026-03-03T03:30:00.000Z",
            "host": {"name": HOST},
            "winlog": {
                "channel": channel,
                "event_id": code,
                "provider_name": provider,
                "computer_name": HOST,
                "record_id": 88121,
                key: data,
            },
        }
    )


def nxlog(code: int, channel: str, provider: str, data: dict[str, Any]) -> str:
    """NXLog's im_msvistalog JSON: EventData names are top-level keys."""
    return json.dumps(
        {
            "EventTime": "2026-03-03 10:30:00",
            "Hostname": HOST,
            "EventID": code,
            "SourceName": provider,
            "Channel": channel,
            "RecordNumber": 88122,
            **data,
        }
    )


def detection_1116(source: str, threat: str, path: str) -> dict[str, str]:
    """The EventData of Defender event 1116 (malware detected), names as Windows writes them."""
    return {
        "Product Name": "Microsoft Defender Antivirus",
        "Product Version": "4.18.24090.11",
        "Detection ID": "{5E1A8F62-0D9A-4C2B-9E3D-7F1B2A6C4D11}",
        "Detection Time": "2026-03-03T03:29:58.114Z",
        "Threat ID": "2147726914",
        "Threat Name": threat,
        "Severity ID": "5",
        "Severity Name": "Severe",
        "Category ID": "34",
        "Category Name": "Tool",
        "FWLink": "https://go.microsoft.com/fwlink/?linkid=37020&name=x&threatid=2147726914",
        "Status Code": "1",
        "State": "1",
        "Source ID": "3",
        "Source Name": source,
        "Process Name": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
        "Detection User": "SOTTTT\\thanhnv",
        "Path": path,
        "Origin ID": "1",
        "Origin Name": "Local machine",
        "Execution ID": "1",
        "Execution Name": "Suspended",
        "Type ID": "0",
        "Type Name": "Concrete",
        "Pre Execution Status": "0",
        "Action ID": "9",
        "Action Name": "Not Applicable",
        "Error Code": "0x00000000",
        "Error Description": "The operation completed successfully. ",
        "Post Clean Status": "0",
        "Additional Actions ID": "0",
        "Additional Actions String": "No additional actions required",
        "Remediation User": "",
        "Security intelligence Version": "AV: 1.421.1090.0",
        "Engine Version": "AM: 1.1.24090.11",
    }


@pytest.fixture(scope="module")
def sigmahq() -> Path:
    return shared_data("sigma", "rules")


def raised(rule_file: Path, line: str) -> bool:
    """Whether the SigmaHQ rule of ``rule_file`` raises on the event of ``line``."""
    report = load_rules([rule_file])
    assert report.errors == [] and len(report.rules) == 1, report.errors
    event, _ = parse_detected(line, CONTEXT.new_stream())
    return bool(SigmaEngine(report.rules).match(event))


# --- Windows Defender (service windefend) --------------------------------------------------


def test_defender_source_name(sigmahq: Path) -> None:
    rule = sigmahq / "windows/builtin/windefend/win_defender_malware_detected_amsi_source.yml"
    amsi = detection_1116(
        "AMSI", "Trojan:PowerShell/Mimikatz.A", "amsi:_\\Device\\HarddiskVolume3\\x.ps1"
    )
    on_access = detection_1116(
        "Real-Time Protection", "Trojan:Win32/Wacatac.B!ml", "file:_C:\\Users\\Public\\a.exe"
    )
    assert raised(rule, winlogbeat(1116, *DEFENDER, amsi))
    assert raised(rule, nxlog(1116, *DEFENDER, amsi))
    assert not raised(rule, winlogbeat(1116, *DEFENDER, on_access))


def test_defender_new_value(sigmahq: Path) -> None:
    rule = sigmahq / "windows/builtin/windefend/win_defender_config_change_exclusion_added.yml"

    def change(new: str) -> dict[str, str]:
        return {
            "Product Name": "Microsoft Defender Antivirus",
            "Product Version": "4.18.24090.11",
            "Old Value": "",
            "New Value": new,
        }

    exclusion = (
        "HKLM\\SOFTWARE\\Microsoft\\Windows Defender\\Exclusions\\Paths\\C:\\Users\\Public = 0x0"
    )
    signature = (
        "HKLM\\SOFTWARE\\Microsoft\\Windows Defender\\Signature Updates\\ScheduleTime = 0x78"
    )
    assert raised(rule, winlogbeat(5007, *DEFENDER, change(exclusion)))
    assert not raised(rule, winlogbeat(5007, *DEFENDER, change(signature)))


def test_defender_asr_process_name(sigmahq: Path) -> None:
    rule = sigmahq / "windows/builtin/windefend/win_defender_asr_psexec_wmi.yml"

    def block(process: str) -> dict[str, str]:
        return {
            "Product Name": "Microsoft Defender Antivirus",
            "Detection Time": "2026-03-03T03:29:58.114Z",
            "User": "SOTTTT\\thanhnv",
            "ID": "D1E49AAC-8F56-4280-B9BA-993A6D77406C",
            "Path": "C:\\Windows\\System32\\cmd.exe",
            "Process Name": process,
            "Target Commandline": "cmd.exe /c whoami",
            "Parent Commandline": process,
        }

    assert raised(rule, winlogbeat(1121, *DEFENDER, block("C:\\Windows\\PSEXESVC.exe")))
    assert not raised(rule, winlogbeat(1121, *DEFENDER, block("C:\\Windows\\explorer.exe")))


def test_defender_underscore_names(sigmahq: Path) -> None:
    # SigmaHQ writes Feature_Name for "Feature Name": the known Network Inspection error of a
    # machine missing updates is filtered out, any other failure is raised.
    rule = sigmahq / "windows/builtin/windefend/win_defender_real_time_protection_errors.yml"

    def failure(feature: str, reason: str) -> dict[str, str]:
        return {
            "Product Name": "Microsoft Defender Antivirus",
            "Feature Name": feature,
            "Reason": reason,
            "Error Code": "0x80004005",
            "Feature ID": "3",
        }

    assert not raised(rule, winlogbeat(3002, *DEFENDER, failure("%%886", "%%892")))
    assert raised(rule, winlogbeat(3002, *DEFENDER, failure("%%885", "%%892")))


def test_every_windefend_field_is_a_name_defender_writes(sigmahq: Path) -> None:
    """A survey: after the pipeline, each field SigmaHQ's Defender rules use is one Defender
    writes (so a new SigmaHQ name without a mapping fails here)."""
    written = {
        "event.code",
        *(f"winlog.event_data.{name}" for name in detection_1116("", "", "")),
        *(f"winlog.event_data.{name}" for name in ("Old Value", "New Value", "Value")),
        *(f"winlog.event_data.{name}" for name in ("Feature Name", "Reason", "Process Name")),
    }
    pipeline = load_field_mappings().pipeline
    used: dict[str, str] = {}
    for path in sorted((sigmahq / "windows/builtin/windefend").glob("*.yml")):
        rule = SigmaRule.from_yaml(path.read_text(encoding="utf-8"))
        pipeline.apply(rule)
        for detection in rule.detection.detections.values():
            for item in _items(detection):
                if item.field is not None:
                    used[item.field] = path.name
    assert used, "no windefend rule found"
    assert {field: rule for field, rule in used.items() if field not in written} == {}


def _items(detection: SigmaDetection) -> list[SigmaDetectionItem]:
    items: list[SigmaDetectionItem] = []
    for item in detection.detection_items:
        items.extend(_items(item) if isinstance(item, SigmaDetection) else [item])
    return items


# --- Sigma's antivirus category on Defender detections ----------------------------------------


def test_antivirus_category_on_defender_detections(sigmahq: Path) -> None:
    dumper = sigmahq / "category/antivirus/av_password_dumper.yml"
    webshell = sigmahq / "category/antivirus/av_webshell.yml"
    mimikatz = detection_1116(
        "Real-Time Protection", "HackTool:Win32/Mimikatz!pz", "file:_C:\\Users\\Public\\m.exe"
    )
    shell = detection_1116(
        "Real-Time Protection",
        "Backdoor:ASP/Chopper.C!dha",
        "file:_C:\\inetpub\\wwwroot\\aspnet_client\\s.aspx",
    )
    adware = detection_1116(
        "Real-Time Protection", "PUA:Win32/Wajam", "file:_C:\\Users\\Public\\setup.exe"
    )
    assert raised(dumper, winlogbeat(1116, *DEFENDER, mimikatz))
    assert raised(dumper, winlogbeat(1117, *DEFENDER, mimikatz))
    assert raised(webshell, winlogbeat(1116, *DEFENDER, shell))
    assert not raised(dumper, winlogbeat(1116, *DEFENDER, adware))
    assert not raised(webshell, winlogbeat(1116, *DEFENDER, adware))
    # A configuration change is not a detection, whatever its values say.
    assert not raised(dumper, winlogbeat(5007, *DEFENDER, {"Threat Name": "Mimikatz"}))


# --- UserData channels: Winlogbeat writes winlog.user_data ------------------------------------


def test_terminal_services_user_data(sigmahq: Path) -> None:
    rule = sigmahq / "windows/builtin/terminalservices/win_terminalservices_rdp_ngrok.yml"
    channel = (
        "Microsoft-Windows-TerminalServices-LocalSessionManager/Operational",
        "Microsoft-Windows-TerminalServices-LocalSessionManager",
    )

    def logon(address: str) -> dict[str, str]:
        return {
            "xml_name": "EventXML",
            "User": "SOTTTT\\thanhnv",
            "SessionID": "3",
            "Address": address,
        }

    # ngrok's tunnel shows as ::%16777216 in the session's address.
    assert raised(rule, winlogbeat(21, *channel, logon("::%16777216"), key="user_data"))
    assert not raised(rule, winlogbeat(21, *channel, logon("10.20.1.14"), key="user_data"))


def test_wmi_activity_user_data(sigmahq: Path) -> None:
    rule = sigmahq / "windows/builtin/wmi/win_wmi_activity_nteventlogfile_cleareventlog.yml"
    channel = ("Microsoft-Windows-WMI-Activity/Operational", "Microsoft-Windows-WMI-Activity")

    def failure(operation: str) -> dict[str, str]:
        return {
            "xml_name": "Operation_ClientFailure",
            "Id": "{00000000-0000-0000-0000-000000000000}",
            "ClientMachine": "PC-KETOAN-01",
            "User": "SOTTTT\\thanhnv",
            "ClientProcessId": "5120",
            "Component": "Unknown",
            "Operation": operation,
            "ResultCode": "0x80041032",
            "PossibleCause": "Unknown",
        }

    clearing = "Start IWbemServices::ExecMethod - root\\cimv2 : Win32_NTEventlogFile.Name='C:\\Windows\\System32\\Winevt\\Logs\\Security.evtx'::ClearEventlog"
    query = "Start IWbemServices::ExecQuery - root\\cimv2 : select * from Win32_NTEventlogFile"
    assert raised(rule, winlogbeat(5858, *channel, failure(clearing), key="user_data"))
    assert not raised(rule, winlogbeat(5858, *channel, failure(query), key="user_data"))


def test_user_data_values_are_event_data_and_the_winlogbeat_copy_stays() -> None:
    line = winlogbeat(
        1102,
        "Security",
        "Microsoft-Windows-Eventlog",
        {"xml_name": "LogFileCleared", "SubjectUserName": "thanhnv"},
        key="user_data",
    )
    event, _ = parse_detected(line, CONTEXT)
    assert event["winlog.event_data.SubjectUserName"] == "thanhnv"
    assert "winlog.event_data.xml_name" not in event
    assert event["winlog.user_data.SubjectUserName"] == "thanhnv"
    assert event["user.name"] == "thanhnv"
