"""Which Sigma log sources an event belongs to: the one place routing is decided.

Parsers set ordinary ECS fields; this module derives Sigma's product/category/service from
them (Sigma's standard Windows mapping: service by channel, category by Sysmon event id or
Security 4688, antivirus from Defender's detections; Linux process_creation from audit EXECVE
records), so parsers never need to know about Sigma.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from sigma.pipelines.common import windows_logsource_mapping
from sigma.rule import SigmaLogSource


@dataclass(frozen=True)
class EventLogSource:
    products: frozenset[str]
    categories: frozenset[str]
    services: frozenset[str]

    def admits(self, logsource: SigmaLogSource) -> bool:
        """Whether a rule written for ``logsource`` applies to events of this source."""
        return (
            (logsource.product is None or logsource.product in self.products)
            and (logsource.category is None or logsource.category in self.categories)
            and (logsource.service is None or logsource.service in self.services)
        )


def _channel_services() -> dict[str, frozenset[str]]:
    services: dict[str, set[str]] = {}
    for service, channels in windows_logsource_mapping.items():
        for channel in [channels] if isinstance(channels, str) else channels:
            services.setdefault(channel.lower(), set()).add(service)
    return {channel: frozenset(names) for channel, names in services.items()}


_WINDOWS_SERVICES: Final = _channel_services()
_SYSMON_CATEGORIES: Final[dict[str, tuple[str, ...]]] = {
    "1": ("process_creation",),
    "2": ("file_change",),
    "3": ("network_connection",),
    "5": ("process_termination",),
    "6": ("driver_load",),
    "7": ("image_load",),
    "8": ("create_remote_thread",),
    "9": ("raw_access_thread",),
    "10": ("process_access",),
    "11": ("file_event",),
    "12": ("registry_event", "registry_add", "registry_delete"),
    "13": ("registry_event", "registry_set"),
    "14": ("registry_event", "registry_rename"),
    "15": ("create_stream_hash",),
    "16": ("sysmon_status",),
    "4": ("sysmon_status",),
    "17": ("pipe_created",),
    "18": ("pipe_created",),
    "19": ("wmi_event",),
    "20": ("wmi_event",),
    "21": ("wmi_event",),
    "22": ("dns_query",),
    "23": ("file_delete",),
    "24": ("clipboard_capture",),
    "25": ("process_tampering",),
    "26": ("file_delete",),
    "27": ("file_block_executable",),
    "28": ("file_block_shredding",),
    "29": ("file_executable_detected",),
    "255": ("sysmon_error",),
}
_POWERSHELL_CATEGORIES: Final = {"4103": ("ps_module",), "4104": ("ps_script",)}
# Defender's detections (malware found, suspicious behaviour, detected, action taken) are what
# Sigma's antivirus category describes; config/pipelines/windows.yml maps its field names.
_DEFENDER_CATEGORIES: Final = {code: ("antivirus",) for code in ("1006", "1015", "1116", "1117")}
_POWERSHELL_CLASSIC_CATEGORIES: Final = {
    "400": ("ps_classic_start",),
    "600": ("ps_classic_provider_start",),
    "800": ("ps_classic_script",),
}
# Linux programs -> Sigma services (the "auth" service is everything auth.log holds).
_LINUX_PROGRAM_SERVICES: Final = {
    "sshd": ("sshd", "auth"),
    "sudo": ("sudo", "auth"),
    "su": ("auth",),
    "useradd": ("auth",),
    "usermod": ("auth",),
    "userdel": ("auth",),
    "groupadd": ("auth",),
    "passwd": ("auth",),
    "login": ("auth",),
    "CRON": ("cron",),
    "cron": ("cron",),
    "crond": ("cron",),
    "crontab": ("cron",),
    "vsftpd": ("vsftpd",),
    "clamd": ("clamav",),
    "sshguard": ("auth",),
}
_EMPTY: Final[frozenset[str]] = frozenset()
_PROCESS_CREATION: Final = frozenset({"process_creation"})


def routing_key(event: dict[str, Any]) -> tuple[str | None, ...]:
    """A small tuple that determines the event's log sources; used to cache routing."""
    module = _key_part(event.get("event.module"))
    if module == "windows":
        return (module, _key_part(event.get("winlog.channel")), _key_part(event.get("event.code")))
    if module == "system":
        return (module, _key_part(event.get("process.name")))
    if module == "cef":
        return (module, _key_part(event.get("observer.vendor")))
    if module == "auditd":
        return (
            module,
            _key_part(event.get("auditd.log.type")),
            _key_part(event.get("event.outcome")),
        )
    return (module, _key_part(event.get("event.dataset")))


def _key_part(value: Any) -> str | None:
    # Events from other producers may carry numbers, lists or objects here; a list is not
    # hashable, and 4624 and "4624" are one event code.
    return value if value is None or type(value) is str else str(value)


def event_logsource(key: tuple[str | None, ...]) -> EventLogSource:
    """The Sigma log sources for events with this routing key."""
    module = key[0]
    if module == "windows":
        channel = str(key[1] or "")
        code = str(key[2] or "")
        services = _WINDOWS_SERVICES.get(channel.lower(), _EMPTY)
        categories: tuple[str, ...] = ()
        if "sysmon" in services:
            categories = _SYSMON_CATEGORIES.get(code, ())
        elif "security" in services and code == "4688":
            categories = ("process_creation",)
        elif "powershell" in services:
            categories = _POWERSHELL_CATEGORIES.get(code, ())
        elif "powershell-classic" in services:
            categories = _POWERSHELL_CLASSIC_CATEGORIES.get(code, ())
        elif "windefend" in services:
            categories = _DEFENDER_CATEGORIES.get(code, ())
        return EventLogSource(frozenset({"windows"}), frozenset(categories), services)
    if module == "system":
        program = str(key[1] or "")
        program_services = frozenset({"syslog", *_LINUX_PROGRAM_SERVICES.get(program, ())})
        return EventLogSource(frozenset({"linux"}), _EMPTY, program_services)
    if module == "auditd":
        # An EXECVE record is a process start (collectors/parsers/auditd.py) unless its
        # SYSCALL record said the exec failed: Sigma's Linux process_creation rules apply.
        started = key[1] == "EXECVE" and key[2] != "failure"
        return EventLogSource(
            frozenset({"linux"}), _PROCESS_CREATION if started else _EMPTY, frozenset({"auditd"})
        )
    if module == "web":
        return EventLogSource(_EMPTY, frozenset({"webserver"}), _EMPTY)
    if module == "apache":
        return EventLogSource(frozenset({"apache"}), _EMPTY, frozenset({"apache", "error"}))
    if module == "cef":
        vendor = str(key[1] or "").lower()
        return EventLogSource(
            frozenset({vendor} if vendor else ()), frozenset({"firewall"}), _EMPTY
        )
    return EventLogSource(_EMPTY, _EMPTY, _EMPTY)
