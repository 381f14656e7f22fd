"""Which ATT&CK techniques the rules cover, per log source, and whether a test proves it.

A rule is placed under a log source by its test events, not by what its ``logsource`` claims:
the ``match`` cases of ``<rule>.tests.yml`` are parsed by the real parsers (see rule_tests),
and the log source of the events that raised the rule is where the rule is shown to work. A
rule for ``product: linux`` tested on sudo lines and on audit records appears under both. A
rule with no ``match`` case, or with a failing case, is listed apart: docs/coverage.md is
checked by the tests, so such a rule fails them.

Technique names come from a small table of the techniques the project's rules use (no
network, no copy of the ATT&CK bundle); a tagged technique missing from it is reported.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from socpipe.core.resources import bundled_rules_dir
from socpipe.detectors.correlation_rules import CorrelationRule
from socpipe.detectors.rules import CompiledRule, load_rules
from socpipe.scanner.rule_tests import RuleTestResult, Source, run_rule_tests

#: MITRE ATT&CK (Enterprise) names of the techniques the project's rules are tagged with. A
#: sub-technique's full name is its parent's name, a colon and its own.
TECHNIQUES: Final[dict[str, str]] = {
    "T1003": "OS Credential Dumping",
    "T1003.001": "LSASS Memory",
    "T1003.008": "/etc/passwd and /etc/shadow",
    "T1018": "Remote System Discovery",
    "T1021": "Remote Services",
    "T1021.001": "Remote Desktop Protocol",
    "T1027": "Obfuscated Files or Information",
    "T1046": "Network Service Discovery",
    "T1053": "Scheduled Task/Job",
    "T1053.003": "Cron",
    "T1053.005": "Scheduled Task",
    "T1059": "Command and Scripting Interpreter",
    "T1059.001": "PowerShell",
    "T1059.004": "Unix Shell",
    "T1070": "Indicator Removal",
    "T1070.001": "Clear Windows Event Logs",
    "T1070.002": "Clear Linux or Mac System Logs",
    "T1070.003": "Clear Command History",
    "T1071": "Application Layer Protocol",
    "T1078": "Valid Accounts",
    "T1078.003": "Local Accounts",
    "T1083": "File and Directory Discovery",
    "T1090": "Proxy",
    "T1090.003": "Multi-hop Proxy",
    "T1098": "Account Manipulation",
    "T1105": "Ingress Tool Transfer",
    "T1110": "Brute Force",
    "T1110.001": "Password Guessing",
    "T1110.003": "Password Spraying",
    "T1133": "External Remote Services",
    "T1136": "Create Account",
    "T1136.001": "Local Account",
    "T1136.002": "Domain Account",
    "T1190": "Exploit Public-Facing Application",
    "T1219": "Remote Access Software",
    "T1490": "Inhibit System Recovery",
    "T1505": "Server Software Component",
    "T1505.003": "Web Shell",
    "T1543": "Create or Modify System Process",
    "T1543.002": "Systemd Service",
    "T1543.003": "Windows Service",
    "T1548": "Abuse Elevation Control Mechanism",
    "T1548.003": "Sudo and Sudo Caching",
    "T1552": "Unsecured Credentials",
    "T1552.001": "Credentials In Files",
    "T1562": "Impair Defenses",
    "T1562.001": "Disable or Modify Tools",
    "T1562.002": "Disable Windows Event Logging",
    "T1562.012": "Disable or Modify Linux Audit System",
    "T1571": "Non-Standard Port",
    "T1595": "Active Scanning",
    "T1595.001": "Scanning IP Blocks",
    "T1595.002": "Vulnerability Scanning",
    "T1595.003": "Wordlist Scanning",
}
#: The log sources socpipe parses, in the order the document lists them.
SECTIONS: Final = (
    "Linux auth and sudo (syslog)",
    "Linux cron (syslog)",
    "Linux auditd",
    "Web access and error logs",
    "Firewall and IDS (CEF)",
    "Windows Security",
    "Windows System",
    "Windows Sysmon",
    "Windows PowerShell",
    "Windows Defender",
)
OTHER_SECTION: Final = "Other log sources"
_CRON_PROGRAMS: Final = frozenset({"cron", "crond", "crontab"})
_TECHNIQUE_TAG: Final = re.compile(r"attack\.(t\d{4}(?:\.\d{3})?)\Z")

Rule = CompiledRule | CorrelationRule


def section_of(source: Source) -> str:
    """The log source (document section) of an event with this routing key."""
    module = source[0] if source else None
    detail = str(source[1] or "").lower() if len(source) > 1 else ""
    if module == "system":
        return SECTIONS[1] if detail in _CRON_PROGRAMS else SECTIONS[0]
    if module == "auditd":
        return SECTIONS[2]
    if module in ("web", "apache"):
        return SECTIONS[3]
    if module == "cef":
        return SECTIONS[4]
    if module == "windows":
        if detail == "security":
            return SECTIONS[5]
        if detail == "system":
            return SECTIONS[6]
        if "sysmon" in detail:
            return SECTIONS[7]
        if "powershell" in detail:
            return SECTIONS[8]
        if "windows defender" in detail:
            return SECTIONS[9]
    return OTHER_SECTION


def techniques(rule: Rule) -> list[str]:
    """The ATT&CK technique ids a rule is tagged with (``attack.t1110.001`` -> T1110.001)."""
    found = (_TECHNIQUE_TAG.match(tag.lower()) for tag in rule.tags)
    return sorted({match[1].upper() for match in found if match})


def technique_name(technique: str) -> str | None:
    """The full name of a technique, or None when the table lacks it (or its parent)."""
    name = TECHNIQUES.get(technique)
    if name is None or "." not in technique:
        return name
    parent = TECHNIQUES.get(technique.split(".")[0])
    return f"{parent}: {name}" if parent else None


@dataclass
class RuleEvidence:
    """A rule's tests in one log source: passing true- and false-positive cases."""

    rule: Rule
    matches: int = 0
    non_matches: int = 0


@dataclass
class Coverage:
    #: section -> technique -> the evidence of each rule covering it there
    sections: dict[str, dict[str, list[RuleEvidence]]] = field(default_factory=dict)
    #: (rule file, why): rules without a passing match case, with a failing case, or broken
    untested: list[tuple[str, str]] = field(default_factory=list)
    #: tagged techniques the name table lacks -> a rule file that uses it
    unnamed: dict[str, str] = field(default_factory=dict)
    rules: int = 0


def summarize(rules: Sequence[Rule], results: Iterable[RuleTestResult]) -> Coverage:
    """The coverage of ``rules`` given the results of their tests."""
    by_rule: dict[str, list[RuleTestResult]] = defaultdict(list)
    for result in results:
        by_rule[result.rule.id].append(result)
    coverage = Coverage(rules=len(rules))
    for rule in rules:
        own = by_rule.get(rule.id, [])
        failed = [result for result in own if not result.passed]
        placed = {
            section_of(source)
            for result in own
            if result.passed and result.expected
            for source in result.sources
        }
        if failed:
            coverage.untested.append((rule.source, f"{failed[0].case}: {failed[0].reason}"))
        elif not placed:
            coverage.untested.append((rule.source, "no passing match case"))
        for section in placed:
            evidence = RuleEvidence(rule)
            for result in own:
                if result.passed and any(section_of(s) == section for s in result.sources):
                    if result.expected:
                        evidence.matches += 1
                    else:
                        evidence.non_matches += 1
            for technique in techniques(rule):
                coverage.sections.setdefault(section, {}).setdefault(technique, []).append(evidence)
        for technique in techniques(rule):
            if technique_name(technique) is None:
                coverage.unnamed.setdefault(technique, rule.source)
    return coverage


def build_coverage(paths: Sequence[Path]) -> Coverage:
    """Load the rules below ``paths``, run their tests and summarize what they cover."""
    report = load_rules(paths)
    rules: list[Rule] = [*report.rules, *report.correlations]
    coverage = summarize(rules, run_rule_tests(report))
    for error in [*report.errors, *report.unsupported]:
        coverage.untested.append((str(error.source), error.reason))
    return coverage


def problems(coverage: Coverage) -> list[str]:
    """Why the coverage cannot be trusted: untested rules, techniques without a name."""
    found = [f"{source}: {reason}" for source, reason in coverage.untested]
    found += [
        f"{source}: technique {technique} is not in scanner/coverage.py's TECHNIQUES"
        for technique, source in sorted(coverage.unnamed.items())
    ]
    return found


def render(coverage: Coverage, root: Path | None = None) -> str:
    """docs/coverage.md: a summary, then one table per log source. Paths are shown relative
    to ``root`` (default: the folder holding the shipped rules/), so the document is the same
    on every machine and installation."""
    root = root or bundled_rules_dir().parent
    lines = [
        "# Detection coverage",
        "",
        "Generated by `socpipe rules coverage` from the rules' ATT&CK tags and the test events",
        "beside each rule (`<rule>.tests.yml`); do not edit by hand. A rule is listed under a log",
        "source when a `match` case parsed from that source raises it; *tests* counts its passing",
        "true-positive (`match`) and false-positive (`no_match`) cases from that source.",
        "`make test` regenerates this file and fails when it is out of date or a rule has no",
        "passing test.",
        "",
        "| log source | techniques | rules |",
        "| --- | ---: | ---: |",
    ]
    for section in (*SECTIONS, OTHER_SECTION):
        covered = coverage.sections.get(section, {})
        if not covered and section == OTHER_SECTION:
            continue
        rules = {evidence.rule.id for listed in covered.values() for evidence in listed}
        lines.append(f"| [{section}](#{_anchor(section)}) | {len(covered)} | {len(rules)} |")
    lines += ["", f"{coverage.rules} rules and correlations in all."]
    for section in (*SECTIONS, OTHER_SECTION):
        covered = coverage.sections.get(section, {})
        if not covered and section == OTHER_SECTION:
            continue
        lines += ["", f"## {section}", ""]
        if not covered:
            lines.append("No rule of this set is tested on this log source.")
            continue
        lines += [
            "| technique | name | rule | level | tests (match / no match) |",
            "| --- | --- | --- | --- | --- |",
        ]
        for technique in sorted(covered, key=_technique_order):
            name = technique_name(technique) or "(not in the name table)"
            for evidence in sorted(covered[technique], key=lambda item: item.rule.title):
                rule = evidence.rule
                shown = f"{_escape(rule.title)} (`{_shown(rule.source, root)}`)"
                lines.append(
                    f"| {technique} | {name} | {shown} | {rule.level}"
                    f" | {evidence.matches} / {evidence.non_matches} |"
                )
    if coverage.untested:
        lines += ["", "## Rules without a passing test", ""]
        for source, reason in sorted(coverage.untested):
            lines.append(f"- `{_shown(source, root)}`: {_escape(reason)}")
    return "\n".join(lines) + "\n"


def _technique_order(technique: str) -> tuple[int, int]:
    main, _, sub = technique[1:].partition(".")
    return int(main), int(sub or 0)


def _shown(source: str, root: Path) -> str:
    path = Path(source)
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def _anchor(title: str) -> str:
    # GitHub's heading anchors: lower case, spaces to dashes, punctuation dropped.
    return re.sub(r"[^a-z0-9 -]", "", title.lower()).replace(" ", "-")


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
