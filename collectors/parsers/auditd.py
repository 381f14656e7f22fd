"""Linux audit records (``type=SYSCALL msg=audit(1700000000.123:42): key=value ...``).

auditd writes values that may contain spaces or control characters as unquoted hex; those are
decoded so rules can match the real command line, and the raw record stays in event.original.
"""

from __future__ import annotations

import re
from typing import Final

from socpipe.collectors.parsers.base import ParseContext, Parser, register
from socpipe.collectors.timestamps import parse_epoch
from socpipe.core.event import Event, format_timestamp, new_event, put

_HEADER: Final = re.compile(
    r"type=(?P<type>\S+) msg=audit\((?P<time>\d+(?:\.\d+)?):(?P<serial>\d+)\):\s*"
)
_PAIR: Final = re.compile(r"""([\w-]+)=("[^"]*"|'[^']*'|\S*)""")
_HEX: Final = re.compile(r"[0-9A-F]+\Z")
# Fields auditd hex-encodes when the value is unsafe to print (see audit_log_n_untrustedstring).
_HEX_CANDIDATES: Final = {"proctitle", "cmd", "comm", "exe", "cwd", "name", "path", "data", "key"}
_EXECVE_ARG: Final = re.compile(r"a\d+\Z")
_ECS_FROM_AUDIT: Final = {
    "exe": "process.executable",
    "comm": "process.name",
    "pid": "process.pid",
    "ppid": "process.parent.pid",
    "cwd": "process.working_directory",
    "auid": "user.audit.id",
    "uid": "user.id",
    "euid": "user.effective.id",
    "acct": "user.name",
    "hostname": "source.domain",
    "addr": "source.ip",
    "terminal": "process.tty.name",
}


def decode_value(field: str, raw: str) -> str:
    """Unquote a value, or decode it from hex when auditd encoded it."""
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        return raw[1:-1]
    if (
        (field in _HEX_CANDIDATES or _EXECVE_ARG.match(field))
        and len(raw) % 2 == 0
        and _HEX.match(raw)
    ):
        try:
            # NUL separates argv in proctitle; a space reads as the command line an analyst expects.
            return bytes.fromhex(raw).decode("utf-8", "replace").replace("\x00", " ")
        except ValueError:
            return raw
    return raw


def apply_audit_record(event: Event, text: str) -> bool:
    """Add the fields of one audit record to ``event``; ``False`` when it is not one."""
    header = _HEADER.search(text)
    if header is None:
        return False
    record_type = header["type"]
    event["event.module"] = "auditd"
    event["event.dataset"] = "auditd.log"
    event["auditd.log.type"] = record_type
    event["auditd.log.sequence"] = int(header["serial"])
    event["event.action"] = record_type.lower()
    moment = parse_epoch(header["time"])
    if moment is not None:
        event["@timestamp"] = format_timestamp(moment)
    arguments: dict[int, str] = {}
    body = text[header.end() :]
    # USER_* records nest the interesting pairs in msg='...'; unwrap them in place.
    body = re.sub(r"msg='([^']*)'", r"\1", body)
    for field, raw in _PAIR.findall(body):
        value = decode_value(field, raw)
        event[f"auditd.log.{field}"] = value
        if record_type == "EXECVE" and _EXECVE_ARG.match(field):
            arguments[int(field[1:])] = value
        ecs_field = _ECS_FROM_AUDIT.get(field)
        if ecs_field and value not in ("?", "(null)", "unset", "4294967295"):
            put(
                event,
                ecs_field,
                int(value) if ecs_field.endswith("pid") and value.isdigit() else value,
            )
    if arguments:
        event["process.args"] = [arguments[index] for index in sorted(arguments)]
        event["process.command_line"] = " ".join(event["process.args"])
    if "auditd.log.proctitle" in event:
        event.setdefault("process.command_line", event["auditd.log.proctitle"])
    if "auditd.log.res" in event or "auditd.log.success" in event:
        verdict = event.get("auditd.log.res", event.get("auditd.log.success"))
        event["event.outcome"] = "success" if verdict in ("success", "yes", "1") else "failure"
    put(
        event,
        "tags",
        [event["auditd.log.key"]] if event.get("auditd.log.key") not in (None, "(null)") else None,
    )
    return True


class AuditdParser(Parser):
    name = "auditd"

    def looks_like(self, line: str) -> bool:
        return line.startswith("type=") and "msg=audit(" in line[:80]

    def parse_line(self, line: str, context: ParseContext) -> Event | None:
        event = new_event(line, "auditd", "auditd.log", context.reference_time)
        if not apply_audit_record(event, line):
            return None
        event["message"] = line
        return event


register(AuditdParser())
