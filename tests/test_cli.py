"""The socpipe command line, end to end, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from socpipe.core.resources import bundled_rules_dir
from socpipe.detectors.rules import load_rules
from socpipe.pipeline import main
from tests.conftest import REPO

EXPECTED_SAMPLE_ALERTS = {
    # rule title -> alerts expected from the bundled samples (one attack scenario per file)
    "SSH Login As Root Accepted": 1,
    "Account Created With UID 0": 1,
    "User Added To A Privileged Group": 1,
    "Cron Job Runs A Download Or Temp-Folder Command": 1,
    "Crontab Replaced": 1,
    "SSH Too Many Authentication Failures": 1,
    "SSH Login Attempt For Unknown User": 4,
    "SQL Injection Attempt In Request": 2,
    "Path Traversal Attempt In Request": 1,
    "Cross-Site Scripting Attempt In Request": 1,
    "Log4Shell JNDI Lookup In Request": 1,
    "Known Webshell Accessed": 2,
    "Probe For Secrets And Source Files": 2,
    "Administration Panel Probing": 2,
    "Vulnerability Scanner User Agent": 3,
    "Blocked Inbound Connection To Remote Administration Port": 5,
    "IDS Or IPS High Severity Event": 3,
    "WAF Detected SQL Injection": 1,
    "Network Sensor Detected Malware Or Command And Control": 1,
    "Remote Desktop Logon From Outside The Province Network": 1,
    "PowerShell Started With An Encoded Command": 1,
    "PowerShell Script Downloads And Runs Code": 1,
    "Windows User Account Created": 1,
    "Member Added To A Windows Administrators Group": 1,
    "Windows Event Log Cleared": 1,
    "SSH Brute Force From One Source": 2,
    "SSH Brute Force Followed By A Successful Login": 1,
    "Password Spraying From One Source": 2,
    # Base rules that only feed correlations (generate: false) raise nothing on their own.
    "SSH Login Failed": 0,
    "Windows Logon Failure": 0,
}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "pipeline.py"), *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )


@pytest.fixture(scope="module")
def sample_scan(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[subprocess.CompletedProcess[str], list[dict]]:
    folder = tmp_path_factory.mktemp("scan")
    out, incidents = folder / "alerts.jsonl", folder / "incidents.jsonl"
    result = run(
        "scan",
        "samples",
        "--agency",
        "so-tttt",
        "--timezone",
        "Asia/Ho_Chi_Minh",
        "--out",
        str(out),
        "--incidents-out",
        str(incidents),
    )
    alerts = [json.loads(line) for line in out.read_text().splitlines()]
    return result, alerts


def test_scan_of_samples_finds_every_planted_attack(sample_scan) -> None:
    result, alerts = sample_scan
    assert result.returncode == 0, result.stderr
    counts = Counter(alert["rule.name"] for alert in alerts)
    for title, expected in EXPECTED_SAMPLE_ALERTS.items():
        assert counts[title] == expected, title


def test_scan_alerts_carry_agency_entities_and_attack_ids(sample_scan) -> None:
    _, alerts = sample_scan
    root_login = next(a for a in alerts if a["rule.name"] == "SSH Login As Root Accepted")
    assert root_login["organization.id"] == "so-tttt"
    assert root_login["user.name"] == "root"
    assert root_login["source.ip"].startswith(("203.0.113.", "198.51.100."))
    assert root_login["threat.technique.id"] == ["T1078.003"]
    assert "initial_access" in root_login["threat.tactic.name"]
    assert root_login["rule.level"] == "high"
    assert root_login["event.severity"] == 4
    assert root_login["alert.status"] == "new"
    assert root_login["events"][0]["event.original"].endswith("ssh2")
    assert len({alert["alert.id"] for alert in alerts}) == len(alerts)


def test_scan_summary_is_readable(sample_scan) -> None:
    result, alerts = sample_scan
    assert "socpipe scan summary" in result.stderr
    assert f"alerts            {len(alerts)}" in result.stderr
    assert "SSH Login As Root Accepted" in result.stderr
    assert "top sources" in result.stderr
    assert "events/s" in result.stderr


def test_scan_groups_alerts_into_incidents_and_writes_them(sample_scan, tmp_path: Path) -> None:
    result, alerts = sample_scan
    written = Path(result.args[result.args.index("--incidents-out") + 1])
    incidents = [json.loads(line) for line in written.read_text().splitlines()]
    by_id = {incident["incident.id"]: incident for incident in incidents}
    assert len(by_id) == len(incidents) < len(alerts)
    # Every alert names its incident, and each incident counts exactly its alerts.
    members = Counter(alert["incident.id"] for alert in alerts)
    assert members == {key: incident["incident.alert_count"] for key, incident in by_id.items()}
    # The SSH brute force on mail01 (failures, unknown users, two brute-force correlations,
    # the spraying, the root login that followed) is one critical incident.
    ssh = [
        alert
        for alert in alerts
        if alert.get("host.name") == "mail01" and alert.get("source.ip") == "198.51.100.44"
    ]
    [incident_id] = {alert["incident.id"] for alert in ssh}
    brute_force = by_id[incident_id]
    assert brute_force["incident.level"] == "critical"
    assert brute_force["incident.title"] == "SSH Brute Force Followed By A Successful Login"
    assert brute_force["incident.alert_count"] == len(ssh) > 20
    assert f"incidents         {len(incidents)}" in result.stderr
    assert "top incidents" in result.stderr
    assert f"incidents written to {written}" in result.stderr


def test_scan_twice_gives_identical_alert_ids(tmp_path: Path) -> None:
    first, second = tmp_path / "1.jsonl", tmp_path / "2.jsonl"
    assert main(["scan", "samples/linux", "--out", str(first), "--no-progress"]) == 0
    assert main(["scan", "samples/linux", "--out", str(second), "--no-progress"]) == 0
    ids = [
        [json.loads(line)["alert.id"] for line in path.read_text().splitlines()]
        for path in (first, second)
    ]
    assert ids[0] == ids[1]
    assert ids[0]


def test_scan_usage_errors_exit_2(tmp_path: Path) -> None:
    assert run("scan", "no/such/path").returncode == 2
    assert "no such file or folder: no/such/path" in run("scan", "no/such/path").stderr
    assert run("scan", "samples", "--timezone", "Mars/Olympus").returncode == 2
    assert run("scan").returncode == 2


def test_forward_usage_errors_exit_2_before_any_server_is_asked(tmp_path: Path) -> None:
    bad_day = run("forward", "report", "--day", "2026-13-01")
    assert bad_day.returncode == 2 and "--day: '2026-13-01' is not a date" in bad_day.stderr
    unknown = run("forward", "start-from", "nowhere", "earliest")
    assert unknown.returncode == 2 and "no destination named 'nowhere'" in unknown.stderr
    config = tmp_path / "socpipe.yml"
    config.write_text(
        "forwarding:\n  destinations:\n    - {name: hook, type: webhook, url: 'https://x/'}\n"
    )
    bad_time = run("forward", "start-from", "hook", "yesterday", "--config", str(config))
    assert bad_time.returncode == 2
    assert "position: 'yesterday' is not earliest, latest or an ISO 8601 time" in bad_time.stderr
    both = run("forward", "status", "--alert", "a", "--incident", "i")
    assert both.returncode == 2 and "not allowed with argument" in both.stderr


def test_scan_with_only_broken_rules_fails(tmp_path: Path) -> None:
    (tmp_path / "bad.yml").write_text("title: [unclosed\n")
    result = run("scan", "samples/linux", "--rules", str(tmp_path))
    assert result.returncode == 1
    assert "bad.yml: line 2: invalid YAML" in result.stderr
    assert "no usable rule" in result.stderr


def test_rules_check_lists_every_problem_and_goes_on(tmp_path: Path) -> None:
    good = (REPO / "rules/linux/ssh_root_login_accepted.yml").read_text()
    (tmp_path / "good.yml").write_text(good)
    (tmp_path / "broken_yaml.yml").write_text("title: x\n  detection: [\n")
    (tmp_path / "bad_modifier.yml").write_text(
        good.replace("user.name: root", "user.name|contians: root").replace("id: ", "id: 1")
    )
    (tmp_path / "no_condition.yml").write_text(
        "title: t\nid: 5f0c1cde-1f57-4f54-9f8a-3a0b4c7b9d11\nlogsource: {product: linux}\ndetection:\n  sel: {a: 1}\n"
    )
    (tmp_path / "correlation.yml").write_text(
        "title: c\nid: 6f0c1cde-1f57-4f54-9f8a-3a0b4c7b9d11\ncorrelation:\n  type: event_count\n  rules: [x]\n  group-by: [a]\n  timespan: 5m\n  condition: {gte: 5}\n"
    )
    (tmp_path / "value_sum.yml").write_text(
        "title: s\nid: 7f0c1cde-1f57-4f54-9f8a-3a0b4c7b9d11\ncorrelation:\n  type: value_sum\n  rules: [x]\n  timespan: 5m\n  condition: {gte: 5, field: b}\n"
    )
    result = run("rules", "check", str(tmp_path))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert any("broken_yaml.yml: line " in line and "invalid YAML" in line for line in lines)
    assert any("bad_modifier.yml" in line and "contians" in line for line in lines)
    assert any("no_condition.yml" in line and "condition" in line.lower() for line in lines)
    assert any("correlation.yml" in line and "unknown rule 'x'" in line for line in lines)
    assert any(line.startswith("unsupported:") and "value_sum.yml" in line for line in lines)
    assert lines[-1] == "6 files: 1 rules and 0 correlations compiled, 4 with errors, 1 unsupported"


def test_rules_check_of_project_rules_is_clean() -> None:
    result = run("rules", "check", "rules")
    assert result.returncode == 0
    assert result.stdout.strip().endswith("with errors, 0 unsupported")
    assert " 0 with errors" in result.stdout


def test_rules_test_reports_failures(tmp_path: Path) -> None:
    rule = (REPO / "rules/linux/ssh_root_login_accepted.yml").read_text()
    (tmp_path / "r.yml").write_text(rule)
    (tmp_path / "r.tests.yml").write_text(
        "match:\n  - 'Mar  3 10:05:44 web01 sshd[1]: Accepted password for alice from 10.0.0.1 port 1 ssh2'\n"
        "no_match:\n  - 'Mar  3 10:05:44 web01 sshd[1]: Accepted password for bob from 10.0.0.1 port 1 ssh2'\n"
    )
    result = run("rules", "test", str(tmp_path))
    assert result.returncode == 1
    assert "FAIL" in result.stdout and "r.tests.yml:match[1]" in result.stdout
    assert result.stdout.strip().endswith("1 passed, 1 failed")


def test_rules_test_of_project_rules_passes() -> None:
    result = run("rules", "test")
    assert result.returncode == 0, result.stdout
    assert result.stdout.strip().endswith(", 0 failed")


def test_scan_raises_brute_force_followed_by_success(tmp_path: Path) -> None:
    lines = [
        f"Mar  3 10:{minute:02d}:{second:02d} web01 sshd[{800 + minute}]: Failed password for"
        f" root from 203.0.113.50 port {40000 + second} ssh2"
        for minute in range(2)
        for second in range(0, 60, 10)
    ]
    lines += [
        # An administrator mistyping twice, then logging in: not a brute force.
        "Mar  3 10:03:00 web01 sshd[900]: Failed password for hanh from 10.20.0.8 port 50000 ssh2",
        "Mar  3 10:03:05 web01 sshd[900]: Failed password for hanh from 10.20.0.8 port 50000 ssh2",
        "Mar  3 10:03:09 web01 sshd[900]: Accepted password for hanh from 10.20.0.8 port 50001 ssh2",
        "Mar  3 10:20:00 web01 sshd[901]: Accepted password for root from 203.0.113.50 port 40100 ssh2",
    ]
    log = tmp_path / "auth.log"
    log.write_text("\n".join(lines) + "\n")
    out = tmp_path / "alerts.jsonl"
    result = run("scan", str(log), "--agency", "so-tttt", "--out", str(out), "--no-progress")
    assert result.returncode == 0, result.stderr
    alerts = [json.loads(line) for line in out.read_text().splitlines()]
    by_rule = Counter(alert["rule.name"] for alert in alerts)
    assert by_rule["SSH Brute Force From One Source"] == 1
    [chained] = [a for a in alerts if a["rule.name"].startswith("SSH Brute Force Followed")]
    assert chained["rule.level"] == "critical"
    assert chained["correlation.group"] == {"source.ip": "203.0.113.50"}
    assert chained["alert.last_seen"].endswith("10:20:00.000Z")
    assert chained["organization.id"] == "so-tttt"
    assert "SSH Login Failed" not in by_rule
    correlations = len(load_rules([bundled_rules_dir()]).correlations)
    assert f"{correlations} correlations" in result.stderr


def test_interrupted_scan_says_where_its_alerts_are(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    def interrupted(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("socpipe.scanner.run.run_scan", interrupted)
    out = tmp_path / "alerts.jsonl"
    assert main(["scan", "samples/linux", "--out", str(out), "--no-progress"]) == 130
    error = capsys.readouterr().err
    assert f"scan interrupted; the alerts found so far are in {out}" in error
    assert "Traceback" not in error


def test_version_and_the_default_configuration_round_trip(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith("socpipe ")
    assert main(["config", "default"]) == 0
    shipped = capsys.readouterr().out
    assert "kafka:" in shipped and "forwarding:" in shipped
    copy = tmp_path / "socpipe.yml"
    copy.write_text(shipped)
    assert main(["config", "check", str(copy)]) == 0
    assert "valid" in capsys.readouterr().out
    copy.write_text(shipped.replace("  partitions: 4", "  partitions: four"))
    assert main(["config", "check", str(copy)]) == 2
    assert "kafka.partitions: expected int, got str" in capsys.readouterr().err


def test_a_missing_path_is_reported_before_any_heavy_import(tmp_path: Path) -> None:
    code = (
        "import sys; from socpipe.pipeline import main; "
        f"status = main(['scan', {str(tmp_path / 'missing.log')!r}]); "
        "heavy = [m for m in ('sklearn', 'sigma', 'kafka', 'elasticsearch') if m in sys.modules]; "
        "print(status, heavy)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "2 []"
    assert "no such file or folder" in result.stderr


def test_a_scan_without_models_does_not_import_scikit_learn() -> None:
    code = (
        "import sys; from socpipe.pipeline import main; "
        "main(['scan', 'samples/linux', '--no-progress']); print('sklearn' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
