"""Linux audit records (``type=SYSCALL msg=audit(1700000000.123:42): key=value ...``).

auditd writes values that may contain spaces or control characters as unquoted hex; those are
decoded so rules can match the real command line, and the raw record stays in event.original.

An EXECVE record is a process start: it gets the executable, pids, user and outcome of the
SYSCALL record of the same call (seen just before it, see audit_stream), and the parent's
executable when the parent's start was seen. Its working directory is on the CWD record that
comes after it: the start waits for it in the stream's join (audit_join), where its reader
holds it back, and every other record of the call tells the join whether it came.
Detection routes it to Sigma's ``process_creation`` category (detectors/logsource.py) besides
the ``auditd`` service.
"""

from __future__ import annotations

import re
from typing import Final

from socpipe.collectors.parsers.audit_stream import AuditStream
from socpipe.collectors.parsers.base import ParseContext, Parser, register
from socpipe.collectors.timestamps import parse_epoch
from socpipe.core.event import Event, format_timestamp, new_event, put, put_int, to_int

_HEADER: Final = re.compile(
    r"(?:node=(?P<node>\S+) )?type=(?P<type>\S+)"
    r" msg=audit\((?P<time>\d+(?:\.\d+)?):(?P<serial>\d+)\):\s*"
)
# A key starts where the previous character cannot be part of one: findall otherwise tried a
# key at every character of a long run without "=" (quadratic in the line's length).
_PAIR: Final = re.compile(r"""(?<![\w-])([\w-]+(?:\[\d+\])?)=("[^"]*"|'[^']*'|\S*)""")
_HEX: Final = re.compile(r"[0-9A-F]+\Z")
# Fields auditd hex-encodes when the value is unsafe to print (see audit_log_n_untrustedstring).
_HEX_CANDIDATES: Final = {"proctitle", "cmd", "comm", "exe", "cwd", "name", "path", "data", "key"}
_EXECVE_ARG: Final = re.compile(r"a\d+\Z")
# An argument longer than the kernel's record size comes in chunks: a2_len=N a2[0]=.. a2[1]=..
_EXECVE_CHUNK: Final = re.compile(r"a(\d+)\[\d+\]\Z")
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
    # log_format=ENRICHED adds the names of the ids after a \x1d separator.
    "UID": "user.name",
}
#: What an EXECVE record takes from the SYSCALL record of its call.
_FROM_SYSCALL: Final = (
    "process.executable",
    "process.name",
    "process.pid",
    "process.parent.pid",
    "user.id",
    "user.effective.id",
    "user.audit.id",
    "user.name",
    "event.outcome",
)


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


def _join_chunks(parts: list[str]) -> str:
    # Hex chunks are joined before decoding: a cut may fall inside a UTF-8 sequence.
    if all(_HEX.match(part) for part in parts):
        return decode_value("a0", "".join(parts))
    return "".join(decode_value("a0", part) for part in parts)


def apply_audit_record(event: Event, text: str, stream: AuditStream | None = None) -> bool:
    """Add the fields of one audit record to ``event``; ``False`` when it is not one.

    ``stream`` joins the records of one call (a process start on its EXECVE record); without
    it each record stands alone.
    """
    # Anchored: searching the line tried the header at every "type=" of it (quadratic).
    header = _HEADER.match(text)
    if header is None:
        return False
    record_type = header["type"]
    event["event.module"] = "auditd"
    event["event.dataset"] = "auditd.log"
    event["auditd.log.type"] = record_type
    put_int(event, "auditd.log.sequence", header["serial"])
    event["event.action"] = record_type.lower()
    node = header["node"]
    if node is not None:
        event["host.name"] = node
    moment = parse_epoch(header["time"])
    if moment is not None:
        event["@timestamp"] = format_timestamp(moment)
    arguments: dict[int, str] = {}
    chunks: dict[int, list[str]] = {}
    body = text[header.end() :]
    # USER_* records nest the interesting pairs in msg='...'; unwrap them in place.
    body = re.sub(r"msg='([^']*)'", r"\1", body)
    for field, raw in _PAIR.findall(body):
        if record_type == "EXECVE" and field.endswith("]"):
            chunk = _EXECVE_CHUNK.match(field)
            index = to_int(chunk[1]) if chunk is not None else None
            if index is not None:
                chunks.setdefault(index, []).append(raw)
            continue
        value = decode_value(field, raw)
        event[f"auditd.log.{field}"] = value
        if record_type == "EXECVE" and _EXECVE_ARG.match(field):
            index = to_int(field[1:])
            if index is not None:
                arguments[index] = value
        ecs_field = _ECS_FROM_AUDIT.get(field)
        if ecs_field and value not in ("?", "(null)", "unset", "4294967295"):
            if ecs_field.endswith("pid"):
                put_int(event, ecs_field, value)
            else:
                put(event, ecs_field, value)
    for index, parts in chunks.items():
        arguments[index] = event[f"auditd.log.a{index}"] = _join_chunks(parts)
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
    if stream is not None:
        key = _call_key(event, header["time"], header["serial"])
        if record_type == "EXECVE":
            if _process_start(event, stream, key):
                stream.join.wait(key, event, stream.syscall(key))
        else:
            if record_type == "SYSCALL":
                stream.remember_syscall(key, event)
            stream.join.sibling(key, record_type, event)
    return True


def _call_key(event: Event, time: str, serial: str) -> str:
    # Serials are per host (and restart at boot, hence the time): the host keeps a syslog
    # collector's hosts apart.
    return f"{event.get('host.name', '')}\x1f{time}:{serial}"


def _process_start(event: Event, stream: AuditStream, key: str) -> bool:
    """Make an EXECVE record's event a process start with what its SYSCALL record said;
    whether it is one."""
    syscall = stream.syscall(key)
    if syscall is not None:
        for field in _FROM_SYSCALL:
            if field in syscall:
                event[field] = syscall[field]
    if event.get("event.outcome") == "failure":
        return False  # the exec failed: no process started
    event["event.category"] = ["process"]
    event["event.type"] = ["start"]
    pid = event.get("process.pid")
    if pid is None or "auditd.log.argc" not in event:
        return True  # the start is remembered once, from the first of its EXECVE records
    host = event.get("host.name", "")
    parent = stream.process(f"{host}\x1f{event.get('process.parent.pid')}")
    if parent is not None:
        event["process.parent.executable"] = parent[0]
        put(event, "process.parent.command_line", parent[1])
    stream.remember_process(
        f"{host}\x1f{pid}",
        str(event.get("process.executable", "")),
        str(event.get("process.command_line", "")),
    )
    return True


class AuditdParser(Parser):
    name = "auditd"

    def looks_like(self, line: str) -> bool:
        # node= prefixes every record when auditd.conf sets name_format.
        return line.startswith(("type=", "node=")) and "msg=audit(" in line[:160]

    def parse_line(self, line: str, context: ParseContext) -> Event | None:
        event = new_event(line, "auditd", "auditd.log", context.reference_time)
        if not apply_audit_record(event, line, context.audit):
            return None
        event["message"] = line
        return event


register(AuditdParser())
