"""Fields inside sshd, sudo, su, account-management and cron messages."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from socpipe.collectors.parsers import ParseContext, get_parser, linux_programs
from tests.conftest import REPO, shared_data

CONTEXT = ParseContext(reference_time=datetime(2026, 3, 10, tzinfo=UTC))


def parse(message: str, program: str = "sshd") -> dict:
    event = get_parser("syslog").parse(f"Mar  3 10:00:01 web01 {program}[100]: {message}", CONTEXT)
    assert event is not None
    return event


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            "Failed password for root from 203.0.113.50 port 51122 ssh2",
            {
                "event.outcome": "failure",
                "user.name": "root",
                "source.ip": "203.0.113.50",
                "source.port": 51122,
                "system.auth.ssh.method": "password",
            },
        ),
        (
            "Failed password for invalid user admin from 2001:db8::7 port 40000 ssh2",
            {
                "event.outcome": "failure",
                "user.name": "admin",
                "source.ip": "2001:db8::7",
                "system.auth.ssh.invalid_user": True,
            },
        ),
        (
            "Accepted publickey for deploy from 10.20.1.5 port 40022 ssh2: RSA SHA256:abc",
            {
                "event.outcome": "success",
                "user.name": "deploy",
                "system.auth.ssh.method": "publickey",
            },
        ),
        (
            "Invalid user oracle from 198.51.100.7 port 40000",
            {"event.action": "ssh_invalid_user", "user.name": "oracle"},
        ),
        (
            "Received disconnect from 10.0.0.9 port 5122:11: bye [preauth]",
            {"event.action": "ssh_disconnect", "source.ip": "10.0.0.9"},
        ),
        (
            "Disconnected from user alice 10.0.0.4 port 40000",
            {"event.action": "ssh_disconnect", "user.name": "alice"},
        ),
        (
            "pam_unix(sshd:session): session opened for user alice(uid=1000) by (uid=0)",
            {"event.action": "session_opened", "user.name": "alice"},
        ),
    ],
)
def test_sshd(message: str, expected: dict) -> None:
    event = parse(message)
    assert event["event.dataset"] == "system.auth"
    for field, value in expected.items():
        assert event[field] == value, field


def test_sudo_command() -> None:
    event = parse(
        "   alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/vim /etc/hosts",
        "sudo",
    )
    assert event["user.name"] == "alice"
    assert event["user.effective.name"] == "root"
    assert event["process.command_line"] == "/usr/bin/vim /etc/hosts"
    assert event["process.working_directory"] == "/home/alice"
    assert event["event.outcome"] == "success"


def test_sudo_refused() -> None:
    event = parse(
        "www-data : user NOT in sudoers ; TTY=pts/1 ; PWD=/var/www ; USER=root ; COMMAND=/bin/sh",
        "sudo",
    )
    assert event["event.outcome"] == "failure"
    assert event["error.message"] == "user NOT in sudoers"


def test_su() -> None:
    failed = parse("FAILED SU (to root) bob on pts/1", "su")
    assert (failed["event.outcome"], failed["user.name"], failed["user.target.name"]) == (
        "failure",
        "bob",
        "root",
    )
    session = parse("pam_unix(su:session): session opened for user root by bob(uid=1000)", "su")
    assert session["related.user"] == ["root", "bob"]


@pytest.mark.parametrize(
    ("program", "message", "action", "field", "value"),
    [
        (
            "useradd",
            "new user: name=sysbackup, UID=0, GID=0, home=/root, shell=/bin/bash",
            "user_created",
            "user.target.id",
            "0",
        ),
        ("useradd", "new group: name=dev, GID=1004", "group_created", "group.name", "dev"),
        (
            "groupadd",
            "group added to /etc/group: name=ops, GID=1005",
            "group_created",
            "group.id",
            "1005",
        ),
        ("usermod", "add 'bob' to group 'sudo'", "user_added_to_group", "group.name", "sudo"),
        ("userdel", "delete user 'bob'", "user_deleted", "user.target.name", "bob"),
        (
            "passwd",
            "pam_unix(passwd:chauthtok): password changed for bob",
            "password_changed",
            "user.target.name",
            "bob",
        ),
    ],
)
def test_account_changes(program: str, message: str, action: str, field: str, value: str) -> None:
    event = parse(message, program)
    assert event["event.action"] == action
    assert event["event.category"] == ["iam"]
    assert event[field] == value


def test_cron() -> None:
    command = parse("(root) CMD (run-parts /etc/cron.hourly)", "CRON")
    assert (command["user.name"], command["process.command_line"]) == (
        "root",
        "run-parts /etc/cron.hourly",
    )
    edit = parse("(alice) REPLACE (alice)", "crontab")
    assert edit["event.action"] == "crontab_replace"


def test_unknown_program_keeps_message_only() -> None:
    event = parse("Started Session 12 of User alice.", "systemd")
    assert event["message"] == "Started Session 12 of User alice."
    assert "event.action" not in event


GUARDED = {
    name: value
    for name, value in vars(linux_programs).items()
    if isinstance(value, linux_programs.GuardedPattern)
}


def real_messages() -> list[str]:
    """Every line of the real loghub OpenSSH and Linux samples and of the bundled auth log."""
    lines = (REPO / "samples" / "linux" / "auth.log").read_text().splitlines()
    for system in ("OpenSSH", "Linux"):
        path = shared_data("loghub", "2k", system) / f"{system}_2k.log"
        lines += path.read_text(encoding="utf-8", errors="replace").splitlines()
    return lines


def assert_guard_agrees(pattern: linux_programs.GuardedPattern, text: str) -> None:
    guarded, plain = pattern.search(text), pattern.regex.search(text)
    assert (guarded and guarded.group(0)) == (plain and plain.group(0)), text


@pytest.mark.parametrize("name", sorted(GUARDED))
def test_a_guard_never_hides_a_match_in_real_logs(name: str) -> None:
    pattern = GUARDED[name]
    texts = real_messages()
    for text in texts:
        assert_guard_agrees(pattern, text)
    # The real logs exercise the pattern: without matches the agreement would prove nothing.
    assert any(pattern.regex.search(text) for text in texts) or name == "_REVERSE_MAP"


@settings(max_examples=300)
@given(
    pieces=st.lists(
        st.sampled_from(
            [
                "Accepted ",
                "Failed ",
                "password ",
                "publickey ",
                "for ",
                "invalid user ",
                "Invalid user ",
                "from ",
                "10.0.0.1 ",
                "port ",
                "22",
                "root ",
                "Disconnected ",
                "Received disconnect ",
                "Connection closed by ",
                "Connection reset by ",
                "authenticating user ",
                "user ",
                "authentication failure; ",
                "rhost=1.2.3.4 ",
                "user=bob",
                "session opened ",
                "session closed ",
                "(uid=0) ",
                "by ",
                "[10.0.0.2] failed - POSSIBLE BREAK-IN ATTEMPT",
                "x",
                " ",
            ]
        ),
        max_size=12,
    )
)
def test_a_guard_never_hides_a_match_in_random_messages(pieces: list[str]) -> None:
    text = "".join(pieces)
    for pattern in GUARDED.values():
        assert_guard_agrees(pattern, text)
