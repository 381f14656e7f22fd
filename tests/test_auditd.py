"""Linux audit records, including hex-encoded values."""

from __future__ import annotations

from datetime import UTC, datetime

from socpipe.collectors.parsers import ParseContext, parse_detected
from socpipe.collectors.parsers.auditd import decode_value

CONTEXT = ParseContext(reference_time=datetime(2026, 3, 10, tzinfo=UTC))


def test_syscall_record() -> None:
    line = 'type=SYSCALL msg=audit(1364481363.243:24287): arch=c000003e syscall=2 success=no exit=-13 a0=7fffd19c5592 ppid=2686 pid=3538 auid=500 uid=500 comm="cat" exe="/bin/cat" key="sshd_config"'
    event, parser = parse_detected(line, CONTEXT)
    assert parser.name == "auditd"
    assert event["@timestamp"] == "2013-03-28T14:36:03.243Z"
    assert event["auditd.log.type"] == "SYSCALL"
    assert event["auditd.log.sequence"] == 24287
    assert event["process.executable"] == "/bin/cat"
    assert event["process.name"] == "cat"
    assert event["process.pid"] == 3538
    assert event["process.parent.pid"] == 2686
    assert event["event.outcome"] == "failure"
    assert event["tags"] == ["sshd_config"]
    # a0 of a SYSCALL record is a pointer, not hex text: it stays as written.
    assert event["auditd.log.a0"] == "7fffd19c5592"


def test_execve_arguments_decoded_from_hex() -> None:
    line = 'type=EXECVE msg=audit(1700000000.1:9): argc=3 a0="bash" a1="-c" a2=6563686F202268692074686572652220'
    event, _ = parse_detected(line, CONTEXT)
    assert event["process.args"] == ["bash", "-c", 'echo "hi there" ']
    assert event["process.command_line"] == 'bash -c echo "hi there" '


def test_proctitle_nul_separated() -> None:
    assert decode_value("proctitle", "2F62696E2F7368002D69") == "/bin/sh -i"
    assert decode_value("proctitle", '"plain"') == "plain"
    assert decode_value("proctitle", "ABC") == "ABC"


def test_user_record_with_nested_msg() -> None:
    line = 'type=USER_LOGIN msg=audit(1700000000.5:77): pid=1 uid=0 auid=4294967295 ses=4294967295 msg=\'op=login acct="root" exe="/usr/sbin/sshd" hostname=? addr=203.0.113.5 terminal=sshd res=failed\''
    event, _ = parse_detected(line, CONTEXT)
    assert event["user.name"] == "root"
    assert event["source.ip"] == "203.0.113.5"
    assert event["event.outcome"] == "failure"
    assert "user.audit.id" not in event
