"""Fields inside the messages of Linux authentication and account programs.

Each program gets one small function registered by name; the syslog parser calls the one for
the line's program. They set ECS fields (``user.name``, ``source.ip``, ``event.outcome``, ...)
because that is what rules and analysts query, and leave ``message`` untouched.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, tzinfo
from typing import Final

from socpipe.collectors.parsers.audit_stream import AuditStream
from socpipe.collectors.parsers.auditd import apply_audit_record
from socpipe.collectors.parsers.cef import apply_cef
from socpipe.core.event import Event, put, put_int

Enricher = Callable[[Event, str], None]
_ENRICHERS: Final[dict[str, Enricher]] = {}


def _enricher(*programs: str) -> Callable[[Enricher], Enricher]:
    def register(function: Enricher) -> Enricher:
        for program in programs:
            _ENRICHERS[program] = function
        return function

    return register


def _auth(event: Event, action: str, outcome: str | None) -> None:
    event["event.dataset"] = "system.auth"
    event["event.category"] = ["authentication"]
    event["event.action"] = action
    put(event, "event.outcome", outcome)


def _iam(event: Event, action: str, event_type: str) -> None:
    event["event.dataset"] = "system.auth"
    event["event.category"] = ["iam"]
    event["event.type"] = [event_type]
    event["event.action"] = action
    event["event.outcome"] = "success"


class GappedMatch:
    """A match of a ``GuardedPattern`` with a gap: its head's groups, the gap, its tail's."""

    def __init__(self, text: str, head: re.Match[str], gap: str, tail: re.Match[str]) -> None:
        self.text = text
        self.head = head
        self.gap_name = gap
        self.tail = tail

    def __getitem__(self, name: str) -> str | None:
        if name == self.gap_name:
            return self.text[self.head.end() : self.tail.start()]
        groups = self.head.groupdict()
        return groups[name] if name in groups else self.tail.groupdict()[name]

    def groups(self) -> tuple[str | None, ...]:
        gap = self.text[self.head.end() : self.tail.start()]
        return (*self.head.groups(), gap, *self.tail.groups())

    def group(self, index: int = 0) -> str:
        assert index == 0
        return self.text[self.head.start() : self.tail.end()]


class GuardedPattern:
    """A regex behind literals of which every match contains one.

    An sshd message meets up to six patterns before one matches, and a failing search costs
    0.5-0.9 µs where a substring test costs a tenth of that: a session line spent 4 µs here.
    The literals must be necessary (tests check it against real and random messages).

    With ``tail``, the pattern is ``head (?P<gap>.*?) tail``: a lazy gap of any length. As one
    regex, every occurrence of the head in a line without the tail scanned to its end (a
    line of repeated heads took seconds). A line with one head is searched with the regex
    (one scan); with more, the first head is found, then the first tail after it, once: the
    regex's answer (the gap does not cross a newline), in linear time. A later head cannot
    match where an earlier failed, since its tail would follow both. ``regex`` is the whole
    pattern, the definition the tests hold this to.
    """

    def __init__(
        self, needles: tuple[str, ...], pattern: str, gap: str = "", tail: str = ""
    ) -> None:
        self.needles = needles
        self.gap = gap
        self.regex = re.compile(f"{pattern}(?P<{gap}>.*?){tail}" if gap else pattern)
        self.head = re.compile(pattern)
        self.tail = re.compile(tail)

    def search(self, text: str) -> re.Match[str] | GappedMatch | None:
        for needle in self.needles:
            if needle in text:
                if self.gap and self._heads(text) > 1:
                    return self._gapped(text)
                # One head: the regex scans the gap once, and is one call (the usual line).
                return self.regex.search(text)
        return None

    def _heads(self, text: str) -> int:
        # Every head holds a needle: at most this many heads.
        return sum(text.count(needle) for needle in self.needles)

    def _gapped(self, text: str) -> GappedMatch | None:
        position = 0
        tail: re.Match[str] | None = None
        while (head := self.head.search(text, position)) is not None:
            end = head.end()
            if tail is None or tail.start() < end:
                tail = self.tail.search(text, end)
                if tail is None:
                    return None
            line_end = text.find("\n", end)
            if line_end < 0 or tail.start() <= line_end:
                return GappedMatch(text, head, self.gap, tail)
            position = line_end + 1  # the gap stops at a newline: try the next line's heads
        return None


_SSH_LOGIN: Final = GuardedPattern(
    ("Accepted ", "Failed "),
    r"(?P<verdict>Accepted|Failed) (?P<method>[\w-]+) for (?:(?P<invalid>invalid user) )?",
    "user",
    r" from (?P<ip>[0-9A-Fa-f:.]+) port (?P<port>\d+)",
)
_SSH_INVALID: Final = GuardedPattern(
    ("nvalid user ",),
    r"[Ii]nvalid user ",
    "user",
    r" from (?P<ip>[0-9A-Fa-f:.]+)(?: port (?P<port>\d+))?",
)
_SSH_DISCONNECT: Final = GuardedPattern(
    ("isconnect", "Connection "),
    r"(?:Received disconnect from|Disconnected from|Connection closed by|Connection reset by)"
    r"(?: (?:authenticating|invalid) user (?P<user>\S+))?(?: user (?P<user2>\S+))?"
    r" (?P<ip>[0-9A-Fa-f:.]+)(?: port (?P<port>\d+))?",
)
_PAM_FAILURE: Final = GuardedPattern(
    ("authentication failure;",),
    r"authentication failure;",
    "detail",
    r"rhost=(?P<ip>\S*)(?:\s+user=(?P<user>\S+))?",
)
_PAM_SESSION: Final = GuardedPattern(
    ("session ",),
    r"session (?P<state>opened|closed) for user (?P<user>[^\s(]+)(?:\(uid=\d+\))?"
    r"(?: by (?P<by>[^\s(]*))?",
)
_REVERSE_MAP: Final = GuardedPattern(
    ("POSSIBLE BREAK-IN ATTEMPT",),
    r"\[(?P<ip>[0-9A-Fa-f:.]+)\] failed - POSSIBLE BREAK-IN ATTEMPT",
)


def _enrich_pam(event: Event, message: str) -> bool:
    failure = _PAM_FAILURE.search(message)
    if failure:
        _auth(event, "pam_authentication_failure", "failure")
        put(event, "source.ip", failure["ip"])
        put(event, "user.name", failure["user"])
        return True
    session = _PAM_SESSION.search(message)
    if session:
        state, user, by = session.groups()
        event["event.dataset"] = "system.auth"
        event["event.category"] = ["session"]
        event["event.action"] = f"session_{state}"
        event["user.name"] = user
        put(event, "related.user", [user, by] if by else [user])
        return True
    return False


@_enricher("sshd")
def enrich_sshd(event: Event, message: str) -> None:
    login = _SSH_LOGIN.search(message)
    if login:
        # One call for all groups: the most common sshd line, and each group is a call.
        verdict, method, invalid_user, user, ip, port = login.groups()
        _auth(event, "ssh_login", "success" if verdict == "Accepted" else "failure")
        event["user.name"] = user
        event["source.ip"] = ip
        put_int(event, "source.port", port)
        event["system.auth.ssh.method"] = method
        event["system.auth.ssh.event"] = verdict
        if invalid_user:
            event["system.auth.ssh.invalid_user"] = True
        return
    invalid = _SSH_INVALID.search(message)
    if invalid:
        _auth(event, "ssh_invalid_user", "failure")
        event["user.name"] = invalid["user"]
        event["source.ip"] = invalid["ip"]
        put_int(event, "source.port", invalid["port"])
        event["system.auth.ssh.event"] = "Invalid"
        return
    disconnect = _SSH_DISCONNECT.search(message)
    if disconnect:
        event["event.dataset"] = "system.auth"
        event["event.category"] = ["network"]
        event["event.action"] = "ssh_disconnect"
        put(event, "user.name", disconnect["user"] or disconnect["user2"])
        event["source.ip"] = disconnect["ip"]
        put_int(event, "source.port", disconnect["port"])
        return
    reverse = _REVERSE_MAP.search(message)
    if reverse:
        event["event.dataset"] = "system.auth"
        event["event.action"] = "ssh_reverse_mapping_failed"
        event["source.ip"] = reverse["ip"]
        return
    _enrich_pam(event, message)


# Fields between USER and COMMAND (GROUP, TSID, ENV) and PWD hold no ";": with ".*?" in
# them, a line of many ";" had exponentially many ways to fail.
_SUDO_COMMAND: Final = re.compile(
    r"^\s*(?P<user>\S+) : (?:(?P<error>[^;]*?) ; )?TTY=(?P<tty>\S+) ; PWD=(?P<pwd>[^;]*?) ; "
    r"USER=(?P<runas>\S+) ;(?: [^;]*;)*? COMMAND=(?P<command>.*)$"
)


@_enricher("sudo")
def enrich_sudo(event: Event, message: str) -> None:
    command = _SUDO_COMMAND.match(message)
    if command:
        event["event.dataset"] = "system.auth"
        event["event.category"] = ["process"]
        event["event.action"] = "sudo_command"
        event["user.name"] = command["user"]
        event["user.effective.name"] = command["runas"]
        event["process.command_line"] = command["command"]
        put(event, "process.working_directory", command["pwd"])
        error = command["error"]
        event["event.outcome"] = "failure" if error else "success"
        put(event, "error.message", error)
        return
    _enrich_pam(event, message)


_SU_FAILED: Final = re.compile(r"FAILED (?:SU|su) (?:\(to (?P<target>[^)]+)\) )?(?P<user>\S+)")
_SU_OK: Final = re.compile(r"^(?:Successful su|\(to (?P<target>[^)]+)\) (?P<user>\S+) on)")


@_enricher("su")
def enrich_su(event: Event, message: str) -> None:
    failed = _SU_FAILED.search(message)
    if failed:
        _auth(event, "su", "failure")
        event["user.name"] = failed["user"]
        put(event, "user.target.name", failed["target"])
        return
    succeeded = _SU_OK.search(message)
    if succeeded and succeeded["user"]:
        _auth(event, "su", "success")
        event["user.name"] = succeeded["user"]
        put(event, "user.target.name", succeeded["target"])
        return
    _enrich_pam(event, message)


_NEW_USER: Final = "new user: name="
_NEW_USER_FIELDS: Final = re.compile(r"(?P<name>[^,]+), UID=(?P<uid>\d+), GID=(?P<gid>\d+)")
_NEW_GROUP: Final = re.compile(
    r"(?:new group|group added to \S+): name=(?P<name>[^,]+)(?:, GID=(?P<gid>\d+))?"
)
_ADD_TO_GROUP: Final = re.compile(r"add '(?P<user>[^']+)' to (?:shadow )?group '(?P<group>[^']+)'")
_DELETE_USER: Final = re.compile(r"delete user '(?P<user>[^']+)'")
_PASSWORD_CHANGED: Final = re.compile(r"password changed for (?P<user>\S+)")


def _new_user(message: str) -> re.Match[str] | None:
    """``new user: name=N, UID=U, GID=G``. Searched as one regex, every "new user: name=" of
    a line without commas scanned to its end; the fields after one depend only on the first
    comma after it, so after a failure the search goes on past that comma."""
    position = message.find(_NEW_USER)
    while position >= 0:
        start = position + len(_NEW_USER)
        fields = _NEW_USER_FIELDS.match(message, start)
        if fields is not None:
            return fields
        comma = message.find(",", start)
        if comma < 0:
            return None
        position = message.find(_NEW_USER, comma)
    return None


@_enricher("useradd", "usermod", "userdel", "groupadd", "groupdel", "gpasswd", "passwd", "chpasswd")
def enrich_account_change(event: Event, message: str) -> None:
    if match := _new_user(message):
        _iam(event, "user_created", "creation")
        event["user.target.name"] = match["name"]
        event["user.target.id"] = match["uid"]
        event["group.id"] = match["gid"]
    elif match := _NEW_GROUP.search(message):
        _iam(event, "group_created", "creation")
        event["group.name"] = match["name"]
        put(event, "group.id", match["gid"])
    elif match := _ADD_TO_GROUP.search(message):
        _iam(event, "user_added_to_group", "change")
        event["user.target.name"] = match["user"]
        event["group.name"] = match["group"]
    elif match := _DELETE_USER.search(message):
        _iam(event, "user_deleted", "deletion")
        event["user.target.name"] = match["user"]
    elif match := _PASSWORD_CHANGED.search(message):
        _iam(event, "password_changed", "change")
        event["user.target.name"] = match["user"]


_CRON_COMMAND: Final = re.compile(r"^\((?P<user>[^)]+)\) CMD \((?P<command>.*)\)\s*$")
_CRONTAB_EDIT: Final = re.compile(
    r"^\((?P<user>[^)]+)\) (?P<action>REPLACE|BEGIN EDIT|END EDIT|LIST|DELETE) "
    r"\((?P<target>[^)]+)\)"
)


@_enricher("CRON", "cron", "crond", "crontab")
def enrich_cron(event: Event, message: str) -> None:
    if match := _CRON_COMMAND.match(message):
        event["event.category"] = ["process"]
        event["event.action"] = "cron_command"
        event["user.name"] = match["user"]
        event["process.command_line"] = match["command"]
    elif match := _CRONTAB_EDIT.match(message):
        event["event.category"] = ["configuration"]
        event["event.action"] = "crontab_" + match["action"].lower().replace(" ", "_")
        event["user.name"] = match["user"]
        event["user.target.name"] = match["target"]
    else:
        _enrich_pam(event, message)


def enrich_program_message(
    event: Event,
    program: str,
    message: str,
    audit: AuditStream | None = None,
    zone: tzinfo = UTC,
) -> None:
    """Parse the message of a known program; CEF and audit records are recognised by shape
    (``audit`` joins the audit records of one call, as for audit.log lines)."""
    enricher = _ENRICHERS.get(program)
    if enricher is not None:
        enricher(event, message)
    elif message.startswith("CEF:"):
        apply_cef(event, message, zone)
    elif message.startswith(("type=", "node=")) and "msg=audit(" in message:
        apply_audit_record(event, message, audit)
    elif "pam_unix" in message or "authentication failure" in message:
        _enrich_pam(event, message)
