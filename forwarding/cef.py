"""An incident as a CEF line (ArcSight Common Event Format), inside an RFC 5424 syslog message.

Escaping follows the CEF specification: in the header, backslash and pipe; in extension
values, backslash, equals sign and line breaks (as ``\\n``/``\\r``). An incident names several
values per entity; CEF has one slot each, so the first (the earliest seen) goes there, and the
incident's id, level and alert count say where to find the rest.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from socpipe.core.levels import SEVERITY

VERSION = "0.2.0"
#: CEF severity (0-10) per Sigma level.
CEF_SEVERITY = {"informational": 1, "low": 3, "medium": 5, "high": 8, "critical": 10}
#: Incident field -> CEF extension key.
EXTENSION_FIELDS = (
    ("source.ip", "src"),
    ("destination.ip", "dst"),
    ("destination.port", "dpt"),
    ("user.name", "suser"),
    ("user.target.name", "duser"),
    ("host.name", "dhost"),
    ("url.original", "request"),
    ("process.command_line", "cs5"),
    ("file.path", "filePath"),
)


def header_escape(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def extension_escape(value: Any) -> str:
    text = str(value).replace("\\", "\\\\").replace("=", "\\=")
    return text.replace("\r", "\\r").replace("\n", "\\n")


def _first(value: Any) -> Any:
    if isinstance(value, list):
        return value[0] if value else ""
    return value


def _joined(value: Any) -> str:
    return ",".join(str(item) for item in value) if isinstance(value, list) else str(value or "")


def cef_line(incident: dict[str, Any]) -> str:
    level = str(incident.get("incident.level", "medium"))
    moment = datetime.fromisoformat(str(incident["incident.last_seen"]).replace("Z", "+00:00"))
    extension: list[tuple[str, Any]] = [
        ("rt", int(moment.timestamp() * 1000)),
        ("externalId", incident["incident.id"]),
        ("cs1Label", "agency"),
        ("cs1", incident.get("organization.id", "unknown")),
        ("cs2Label", "attack"),
        ("cs2", _joined(incident.get("threat.technique.id"))),
        ("cs3Label", "rules"),
        ("cs3", _joined(incident.get("incident.rule_ids"))),
        ("cs4Label", "level"),
        ("cs4", level),
        ("cat", _joined(incident.get("threat.tactic.name"))),
        ("cnt", incident.get("incident.alert_count", 1)),
        (
            "start",
            int(
                datetime.fromisoformat(
                    str(incident["incident.first_seen"]).replace("Z", "+00:00")
                ).timestamp()
                * 1000
            ),
        ),
        ("msg", incident.get("rule.description", "")),
    ]
    for name, key in EXTENSION_FIELDS:
        if (value := _first(incident.get(name))) not in (None, ""):
            extension.append((key, value))
    if incident.get("process.command_line"):
        extension.append(("cs5Label", "command line"))
    header = "|".join(
        header_escape(part)
        for part in (
            "CEF:0",
            "socpipe",
            "socpipe",
            VERSION,
            incident.get("rule.id", ""),
            incident.get("incident.title", ""),
            CEF_SEVERITY.get(level, SEVERITY.get(level, 5)),
        )
    )
    body = " ".join(f"{key}={extension_escape(value)}" for key, value in extension if value != "")
    return f"{header}|{body}"


def syslog_frame(incident: dict[str, Any], hostname: str) -> bytes:
    """RFC 5424 message (facility local4, severity by level) with RFC 5425 octet counting."""
    level = str(incident.get("incident.level", "medium"))
    severity = {"critical": 2, "high": 3, "medium": 4, "low": 5}.get(level, 6)
    priority = 20 * 8 + severity
    message = (
        f"<{priority}>1 {incident['incident.last_seen']} {hostname} socpipe - socpipe-incident - "
        f"{cef_line(incident)}"
    ).encode()
    return str(len(message)).encode() + b" " + message
