"""Run the test events kept beside each rule (``<rule>.tests.yml``).

Test entries are raw log lines, parsed exactly as ``socpipe scan`` parses them, so a rule test
also proves that the parser produces the fields the rule relies on. Each rule must have at
least one event it matches and one it does not; a rule without tests fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml

from collectors.parsers import ParseContext, parse_detected
from detectors.engine import SigmaEngine
from detectors.rules import CompiledRule

#: Year-less test lines ("Mar  3 ...") are read as if written in March 2026.
TEST_CONTEXT = ParseContext(agency_id="rule-test", reference_time=datetime(2026, 3, 10, tzinfo=UTC))


@dataclass(frozen=True)
class RuleTestResult:
    rule: CompiledRule
    case: str
    passed: bool
    reason: str = ""


def rule_tests_file(rule: CompiledRule) -> Path:
    source = Path(rule.source)
    return source.with_name(source.stem + ".tests.yml")


def run_rule_tests(rules: list[CompiledRule]) -> list[RuleTestResult]:
    """Every test case of every rule, against an engine holding all the given rules."""
    engine = SigmaEngine(rules)
    results: list[RuleTestResult] = []
    for rule in rules:
        results.extend(_run_one(rule, engine))
    return results


def _run_one(rule: CompiledRule, engine: SigmaEngine) -> list[RuleTestResult]:
    path = rule_tests_file(rule)
    try:
        cases = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        return [RuleTestResult(rule, str(path), False, "no test file beside the rule")]
    except (OSError, yaml.YAMLError) as error:
        return [RuleTestResult(rule, str(path), False, f"cannot read tests: {error}")]
    results = []
    for expected_key, expected in (("match", True), ("no_match", False)):
        lines = cases.get(expected_key) or []
        if not lines:
            results.append(
                RuleTestResult(rule, f"{path}:{expected_key}", False, f"no '{expected_key}' events")
            )
        for number, line in enumerate(lines, 1):
            case = f"{path}:{expected_key}[{number}]"
            event, parser = parse_detected(str(line), TEST_CONTEXT)
            matched = any(hit.id == rule.id for hit in engine.match(event))
            if matched == expected:
                results.append(RuleTestResult(rule, case, True))
            else:
                verb = "did not match" if expected else "matched"
                results.append(
                    RuleTestResult(rule, case, False, f"{verb} (parsed as {parser.name})")
                )
    return results
