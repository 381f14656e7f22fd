"""An alert as a CEF line (ArcSight Common Event Format), inside an RFC 5424 syslog message.

Escaping follows the CEF specification: in the header, backslash and pipe; in extension
values, backslash, equals sign and line breaks (as ``\\n``/``\\r``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from socpipe.core.levels import SEVERITY

VERSION = "0.1.0"
#: CEF severity (0-10) per Sigma level.
CEF_SEVERITY = {"informational": 1, "low": 3, "medium": 5, "high": 8, "critical": 10}
#: Alert field -> CEF extension key.
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


def cef_line(alert: dict[str, Any]) -> str:
    level = str(alert.get("rule.level", "medium"))
    moment = datetime.fromisoformat(str(alert["@timestamp"]).replace("Z", "+00:00"))
    extension: list[tuple[str, Any]] = [
        ("rt", int(moment.timestamp() * 1000)),
        ("externalId", alert["alert.id"]),
        ("cs1Label", "agency"),
        ("cs1", alert.get("organization.id", "unknown")),
        ("cs2Label", "attack"),
        ("cs2", ",".join(alert.get("threat.technique.id") or ())),
        ("cat", ",".join(alert.get("threat.tactic.name") or ())),
        ("cnt", alert.get("correlation.count", 1)),
        ("msg", alert.get("rule.description", "")),
    ]
    extension += [(key, alert[name]) for name, key in EXTENSION_FIELDS if alert.get(name)]
    if "process.command_line" in alert:
        extension.append(("cs5Label", "command line"))
    header = "|".join(
        header_escape(part)
        for part in (
            "CEF:0",
            "socpipe",
            "socpipe",
            VERSION,
            alert.get("rule.id", ""),
            alert.get("rule.name", ""),
            CEF_SEVERITY.get(level, SEVERITY.get(level, 5)),
        )
    )
    body = " ".join(f"{key}={extension_escape(value)}" for key, value in extension if value != "")
    return f"{header}|{body}"


def syslog_frame(alert: dict[str, Any], hostname: str) -> bytes:
    """RFC 5424 message (facility local4, severity by level) with RFC 5425 octet counting."""
    level = str(alert.get("rule.level", "medium"))
    severity = {"critical": 2, "high": 3, "medium": 4, "low": 5}.get(level, 6)
    priority = 20 * 8 + severity
    message = (
        f"<{priority}>1 {alert['@timestamp']} {hostname} socpipe - socpipe-alert - "
        f"{cef_line(alert)}"
    ).encode()
    return str(len(message)).encode() + b" " + message
