"""The project's own rules: metadata standards and the test events beside each rule."""

from __future__ import annotations

import re

import pytest
import yaml

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


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys without a word, so a selection written with
    the same field twice silently loses a condition; this loader refuses them."""


def _unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    keys = [loader.construct_object(key, deep=deep) for key, _value in node.value]
    repeated = sorted({str(key) for key in keys if keys.count(key) > 1})
    if repeated:
        raise yaml.constructor.ConstructorError(
            None, None, f"repeated keys {repeated}", node.start_mark
        )
    return yaml.SafeLoader.construct_mapping(loader, node, deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


@pytest.mark.parametrize(
    "path", sorted(bundled_rules_dir().rglob("*.yml")), ids=lambda path: path.name
)
def test_rule_files_have_no_repeated_keys(path) -> None:
    yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)


def test_repeated_keys_are_refused() -> None:
    with pytest.raises(yaml.constructor.ConstructorError, match="repeated keys"):
        yaml.load("selection:\n  a|contains: x\n  a|contains: y\n", Loader=_UniqueKeyLoader)


def test_silent_rules_feed_a_correlation() -> None:
    """Informational rules raise nothing of their own: each exists for a correlation."""
    referenced = {rule for correlation in REPORT.correlations for rule in correlation.rule_ids}
    silent = [rule for rule in REPORT.rules if rule.level == "informational"]
    assert silent
    assert [rule.source for rule in silent if rule.id not in referenced] == []
