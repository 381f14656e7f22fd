"""docs/coverage.md: generated from the rules and their tests, and kept current by this test."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from socpipe.core.resources import bundled_rules_dir
from socpipe.detectors.correlation_rules import CorrelationRule
from socpipe.detectors.rules import CompiledRule, load_rules
from socpipe.pipeline import main
from socpipe.scanner.coverage import (
    OTHER_SECTION,
    SECTIONS,
    TECHNIQUES,
    build_coverage,
    problems,
    render,
    section_of,
    technique_name,
    techniques,
)
from tests.conftest import REPO

PROJECT = build_coverage([bundled_rules_dir()])
COVERAGE_DOC = REPO / "docs" / "coverage.md"


def test_committed_document_is_current() -> None:
    """What makes `make test` check docs/coverage.md: regenerate it with
    `socpipe rules coverage` when a rule or a rule test changes."""
    assert COVERAGE_DOC.read_text(encoding="utf-8") == render(PROJECT)


def test_every_project_rule_has_a_passing_test() -> None:
    assert problems(PROJECT) == []


def test_every_tagged_technique_has_a_name() -> None:
    report = load_rules([bundled_rules_dir()])
    rules: list[CompiledRule | CorrelationRule] = [*report.rules, *report.correlations]
    tagged = {t for rule in rules for t in techniques(rule)}
    assert tagged
    assert {t: technique_name(t) for t in tagged if technique_name(t) is None} == {}
    # The table stays the techniques in use: each entry is tagged or the parent of one.
    parents = {t.split(".")[0] for t in tagged}
    assert sorted(set(TECHNIQUES) - tagged - parents) == []


def test_technique_names() -> None:
    assert technique_name("T1110.001") == "Brute Force: Password Guessing"
    assert technique_name("T1046") == "Network Service Discovery"
    assert technique_name("T9999") is None
    assert technique_name("T1110.999") is None


@pytest.mark.parametrize(
    ("source", "section"),
    [
        (("system", "sshd"), "Linux auth and sudo (syslog)"),
        (("system", "CRON"), "Linux cron (syslog)"),
        (("auditd", "EXECVE", None), "Linux auditd"),
        (("web", "web.access"), "Web access and error logs"),
        (("apache", "apache.error"), "Web access and error logs"),
        (("cef", "Fortinet"), "Firewall and IDS (CEF)"),
        (("windows", "Security", "4688"), "Windows Security"),
        (("windows", "Microsoft-Windows-Sysmon/Operational", "10"), "Windows Sysmon"),
        (("windows", "Microsoft-Windows-Windows Defender/Operational", "1116"), "Windows Defender"),
        (("json", "json.generic"), OTHER_SECTION),
    ],
)
def test_sections(source: tuple, section: str) -> None:
    assert section_of(source) == section


def write_rule(folder: Path, name: str, rule: str, tests: str | None) -> Path:
    path = folder / f"{name}.yml"
    path.write_text(textwrap.dedent(rule), encoding="utf-8")
    if tests is not None:
        (folder / f"{name}.tests.yml").write_text(textwrap.dedent(tests), encoding="utf-8")
    return path


SHADOW_RULE = """\
    title: Shadow File Read
    id: 0f0e8a9c-2b51-4c7e-9d3a-4e6b1c2d3f40
    tags: [attack.credential_access, attack.t1003.008]
    logsource: {product: linux}
    detection:
      selection:
        event.category: process
        process.command_line|contains: /etc/shadow
      condition: selection
    level: high
"""
SUDO_LINE = "Mar  3 11:20:01 db01 sudo:  deploy : TTY=pts/0 ; PWD=/root ; USER=root ; COMMAND=/usr/bin/cat /etc/shadow"
AUDIT_LINE = 'type=EXECVE msg=audit(1772539200.4:9401): argc=2 a0="cat" a1="/etc/shadow"'


def test_a_rule_is_listed_under_each_log_source_its_tests_come_from(tmp_path: Path) -> None:
    write_rule(
        tmp_path,
        "shadow",
        SHADOW_RULE,
        f"""\
        match:
          - '{SUDO_LINE}'
          - '{AUDIT_LINE}'
        no_match:
          - 'Mar  3 11:20:01 db01 sudo:  deploy : TTY=pts/0 ; PWD=/root ; USER=root ; COMMAND=/usr/bin/id'
        """,
    )
    coverage = build_coverage([tmp_path])
    assert problems(coverage) == []
    auth, auditd = coverage.sections[SECTIONS[0]], coverage.sections[SECTIONS[2]]
    assert set(coverage.sections) == {SECTIONS[0], SECTIONS[2]}
    assert [(e.matches, e.non_matches) for e in auth["T1003.008"]] == [(1, 1)]
    assert [(e.matches, e.non_matches) for e in auditd["T1003.008"]] == [(1, 0)]
    text = render(coverage, root=tmp_path)
    assert (
        "| T1003.008 | OS Credential Dumping: /etc/passwd and /etc/shadow | Shadow File Read (`shadow.yml`) | high | 1 / 1 |"
        in text
    )
    assert "## Windows Sysmon\n\nNo rule of this set is tested on this log source." in text


def test_rules_without_tests_or_failing_ones_are_problems(tmp_path: Path) -> None:
    write_rule(tmp_path, "untested", SHADOW_RULE, None)
    failing = SHADOW_RULE.replace(
        "0f0e8a9c-2b51-4c7e-9d3a-4e6b1c2d3f40", "6a1f2e3d-4c5b-4a69-8e7f-0d1c2b3a4f59"
    )
    write_rule(
        tmp_path,
        "failing",
        failing,
        f"""\
        match:
          - '{SUDO_LINE}'
        no_match:
          - '{AUDIT_LINE}'
        """,
    )
    found = problems(build_coverage([tmp_path]))
    assert len(found) == 2
    assert any(
        "untested.yml" in problem and "no test file beside the rule" in problem for problem in found
    )
    assert any(
        "failing.yml" in problem and "no_match[1]" in problem and "matched" in problem
        for problem in found
    )
    text = render(build_coverage([tmp_path]), root=tmp_path)
    assert "## Rules without a passing test" in text
    assert re.search(r"- `untested.yml`: .*no test file", text)


def test_an_unnamed_technique_is_a_problem(tmp_path: Path) -> None:
    rule = SHADOW_RULE.replace("attack.t1003.008", "attack.t1649")
    write_rule(
        tmp_path,
        "unnamed",
        rule,
        f"match: ['{SUDO_LINE}']\nno_match: ['{AUDIT_LINE.replace('shadow', 'hosts')}']\n",
    )
    found = problems(build_coverage([tmp_path]))
    assert found == [
        f"{tmp_path / 'unnamed.yml'}: technique T1649 is not in scanner/coverage.py's TECHNIQUES"
    ]


def test_cli_check_passes_on_the_committed_document(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "coverage", "--check"]) == 0


def test_cli_writes_and_checks_a_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_rule(
        tmp_path,
        "shadow",
        SHADOW_RULE,
        f"match: ['{SUDO_LINE}']\nno_match: ['{AUDIT_LINE.replace('shadow', 'hosts')}']\n",
    )
    out = tmp_path / "coverage.md"
    assert main(["rules", "coverage", str(tmp_path), "--check", "--out", str(out)]) == 1
    assert "out of date" in capsys.readouterr().err
    assert main(["rules", "coverage", str(tmp_path), "--out", str(out)]) == 0
    assert "Shadow File Read" in out.read_text()
    assert main(["rules", "coverage", str(tmp_path), "--check", "--out", str(out)]) == 0
    out.write_text(out.read_text().replace("| high |", "| low |"))
    assert main(["rules", "coverage", str(tmp_path), "--check", "--out", str(out)]) == 1
    assert main(["rules", "coverage", str(tmp_path), "--out", "-"]) == 0
    assert capsys.readouterr().out.startswith("# Detection coverage")


def test_cli_fails_on_a_rule_without_tests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_rule(tmp_path, "untested", SHADOW_RULE, None)
    out = tmp_path / "coverage.md"
    assert main(["rules", "coverage", str(tmp_path), "--out", str(out)]) == 1
    assert main(["rules", "coverage", str(tmp_path), "--check", "--out", str(out)]) == 1
    assert "no test file beside the rule" in capsys.readouterr().err
