"""The project's own rules: metadata standards and the test events beside each rule."""

from __future__ import annotations

import re

import pytest

from socpipe.core.levels import LEVELS
from socpipe.core.resources import bundled_rules_dir
from socpipe.detectors.rules import load_rules
from socpipe.scanner.rule_tests import rule_tests_file, run_rule_tests

REPORT = load_rules([bundled_rules_dir()])
RESULTS = run_rule_tests(REPORT)


def test_all_project_rules_load() -> None:
    assert REPORT.errors == []
    assert REPORT.unsupported == []
    assert len(REPORT.rules) >= 30


@pytest.mark.parametrize("rule", REPORT.rules, ids=lambda rule: rule.source.split("rules/")[-1])
def test_rule_metadata(rule) -> None:
    assert re.fullmatch(
        r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", rule.id
    )
    assert rule.level in LEVELS
    assert any(re.fullmatch(r"attack\.t\d{4}(\.\d{3})?", tag) for tag in rule.tags), rule.tags
    assert rule.description
    assert rule_tests_file(rule).exists()


@pytest.mark.parametrize("result", RESULTS, ids=lambda result: result.case.split("rules/")[-1])
def test_rule_test_case(result) -> None:
    assert result.passed, result.reason


def test_every_rule_has_matching_and_non_matching_cases() -> None:
    for rule in REPORT.rules:
        cases = [result.case for result in RESULTS if result.rule.id == rule.id]
        assert any(":match[" in case for case in cases), rule.source
        assert any(":no_match[" in case for case in cases), rule.source
