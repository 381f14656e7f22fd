"""The whole SigmaHQ rule set loads and compiles."""

from __future__ import annotations

from socpipe.detectors.rules import load_rules
from tests.conftest import shared_data


def test_entire_sigmahq_rule_set_compiles() -> None:
    report = load_rules([shared_data("sigma")])
    assert report.files == 3281
    assert [str(error) for error in report.errors] == []
    assert len(report.rules) + len(report.unsupported) == report.files
    assert len(report.rules) == 3281


def test_every_sigmahq_regex_runs_on_re2() -> None:
    """socpipe refuses rule regexes that need backtracking (lookaround, backreferences): none
    of SigmaHQ's do. 95 rules hold 181 regexes; all load, so none was refused."""
    rules = [path for path in shared_data("sigma").rglob("*.yml") if "|re" in path.read_text()]
    report = load_rules(rules)
    assert len(rules) >= 95
    assert len(report.rules) == len(rules)
    assert not [error for error in report.errors if "cannot run on RE2" in error.reason]
