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
