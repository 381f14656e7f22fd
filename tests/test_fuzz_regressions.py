"""Every input fuzzing ever found failing (tests/fuzz/crashes/<target>/) goes through its
target again, in a process of its own (a native crash must fail the test, not end pytest)."""

from __future__ import annotations

import pytest

from tests.fuzz.targets import TARGETS
from tests.test_fuzz import CRASHES, replay


@pytest.mark.parametrize(
    "target", sorted(target for target in TARGETS if (CRASHES / target).is_dir())
)
def test_inputs_that_once_failed_pass(target: str) -> None:
    result = replay(target, CRASHES / target)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "replayed all" in result.stderr


def test_a_rule_with_an_impossible_date_is_a_rule_error_not_a_crash(tmp_path) -> None:
    """Found by fuzzing: PyYAML lets a date's ValueError through its safe loader."""
    from socpipe.detectors.rules import load_rules

    rule = tmp_path / "rule.yml"
    rule.write_text(
        "title: t\nid: 0c7a8f2e-9f55-4e8a-9a43-6c39a2b4f001\ndate: 2026-19-29\n"
        "logsource: {product: linux}\ndetection: {s: {a: b}, condition: s}\n"
    )
    report = load_rules([rule])
    assert [error.reason for error in report.errors] == [
        "invalid YAML value: month must be in 1..12"
    ]
