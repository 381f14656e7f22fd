"""Bounded YAML: alias bombs and hostile files are refused before anything is built (issue
20: a YAML alias bomb passed `rules check`, then ran out of memory)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
import yaml

from socpipe.core.config import load_config
from socpipe.core.errors import ConfigError
from socpipe.core.yamltext import YamlLimitError, load_document, load_documents, read_bounded
from socpipe.detectors.rules import load_rules
from socpipe.pipeline import main


def laughs(levels: int = 9, key: str = "references") -> str:
    """A rule whose ``references`` expand to 10**levels strings through aliases: pySigma
    accepted it, and writing the first alert's ``rule.reference`` exhausted memory."""
    chain = ['  l0: &l0 ["x","x","x","x","x","x","x","x","x","x"]']
    chain += [f"  l{n}: &l{n} [{','.join([f'*l{n - 1}'] * 10)}]" for n in range(1, levels)]
    return "\n".join(
        [
            "title: laughs",
            "id: 9c0e6a0e-4b7b-4a39-9d6c-0e4f6b1c2d3e",
            "logsource: {product: linux, service: sshd}",
            "bomb:",
            *chain,
            f"{key}: *l{levels - 1}",
            "detection:",
            "  selection: {message|contains: Failed}",
            "  condition: selection",
            "",
        ]
    )


def test_an_alias_bomb_in_a_rule_is_an_error_with_its_line(tmp_path: Path) -> None:
    rule = tmp_path / "laughs.yml"
    rule.write_text(laughs())
    report = load_rules([rule])
    assert report.rules == []
    [error] = report.errors
    assert "expands to more than 50,000 values" in error.reason and error.line is not None
    assert main(["rules", "check", str(tmp_path)]) == 1


def test_rules_may_share_values_through_aliases(tmp_path: Path) -> None:
    rule = tmp_path / "small.yml"
    rule.write_text(laughs(levels=2, key="falsepositives"))
    report = load_rules([rule])
    assert report.errors == [] and len(report.rules) == 1
    assert len(report.rules[0].falsepositives) == 10  # ten lists of ten


def test_a_rule_test_file_that_is_a_bomb_fails_its_tests(tmp_path: Path) -> None:
    rule = tmp_path / "rule.yml"
    rule.write_text(laughs(levels=1).replace("references: *l0\n", ""))
    chain = laughs().split("bomb:\n", 1)[1].split("references", 1)[0]
    (tmp_path / "rule.tests.yml").write_text(f"bomb:\n{chain}match: *l8\nno_match: *l8\n")
    assert main(["rules", "test", str(tmp_path)]) == 1


def test_a_configuration_may_use_aliases_within_a_bound(tmp_path: Path) -> None:
    config = tmp_path / "socpipe.yml"
    config.write_text("stages:\n  rules: &rules [bundled]\n  anomaly_models: []\n")
    assert load_config(config).stages.rules == ["bundled"]
    # 300 destinations sharing one list of 1,000 rule ids: 300,000 values once expanded.
    ids = ", ".join(f"r{n}" for n in range(1000))
    destination = (
        "    - {{name: d{}, type: webhook, url: 'https://x', policy: {{include_rules: {}}}}}"
    )
    destinations = [destination.format(0, f"&ids [{ids}]")]
    destinations += [destination.format(n, "*ids") for n in range(1, 300)]
    config.write_text("forwarding:\n  destinations:\n" + "\n".join(destinations) + "\n")
    with pytest.raises(ConfigError, match=r"socpipe\.yml: line \d+: the document expands to more"):
        load_config(config)


def test_recursive_and_oversized_documents_are_refused() -> None:
    with pytest.raises(YamlLimitError, match="contains itself"):
        load_document("a: &a [*a]\n", max_nodes=100)
    with pytest.raises(YamlLimitError, match="more than 10 values"):
        load_document("[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]", max_nodes=10)
    shared = "a: &a {b: 1}\nc: *a\nd: *a\n"
    assert load_documents(shared, max_nodes=20) == [{"a": {"b": 1}, "c": {"b": 1}, "d": {"b": 1}}]
    with pytest.raises(yaml.YAMLError, match="single document"):
        load_document("a: 1\n---\nb: 2\n", max_nodes=10)


def test_fifos_and_oversized_files_are_refused_unread(tmp_path: Path) -> None:
    fifo = tmp_path / "rules.yml"
    os.mkfifo(fifo)
    outcome: list[str] = []
    reader = threading.Thread(target=lambda: outcome.extend(map(str, load_rules([fifo]).errors)))
    reader.start()
    reader.join(timeout=30)
    assert not reader.is_alive(), "reading a FIFO as a rule file blocked"
    assert outcome == [f"{fifo}: not a regular file"]
    large = tmp_path / "large.yml"
    large.write_bytes(b"#" * 2048)
    with pytest.raises(YamlLimitError, match="larger than the 1 KiB allowed"):
        read_bounded(large, 1024)
