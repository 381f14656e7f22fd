"""Loading rule files: every problem is a message naming the file, the line and the reason
(never a traceback), and a rule that needs a field mapping socpipe cannot find is an error,
never a rule that silently matches nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from socpipe.core.errors import ResourceError
from socpipe.core.resources import bundled_rules_dir, field_mappings_dir, package_path
from socpipe.detectors.rules import load_field_mappings, load_rules
from socpipe.pipeline import main

HEADER = "title: t\nid: 0c7a8f2e-9f55-4e8a-9a43-6c39a2b4f0{n:02d}\n"
BODY = "logsource: {product: linux}\ndetection:\n  sel: {a: x}\n  condition: sel\n"


def write_rule(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("title: t\nid: 1\n" + BODY, 2, "id: must be text (a UUID), not 1"),
        ("title: [1, 2]\nid: x\n" + BODY, 1, "title: must be text, not [1, 2]"),
        (HEADER.format(n=1) + "tags: attack.t1110\n" + BODY, 3, "tags: must be a list"),
        (
            HEADER.format(n=2) + "logsource: linux\ndetection: {}\n",
            3,
            "logsource: must be a mapping",
        ),
        (HEADER.format(n=3) + "level: 5\n" + BODY, 3, "level: must be text, not 5"),
        (HEADER.format(n=4) + "status: nonsense\n" + BODY, 3, "status"),
        (
            HEADER.format(n=5) + "logsource: {product: linux}\ndetection:\n  sel: {a: [1\n",
            6,
            "invalid YAML",
        ),
        (HEADER.format(n=6) + "date: [29, 11]\n" + BODY, 3, "date: must be a date"),
    ],
)
def test_a_broken_rule_is_a_message_with_its_line(
    tmp_path: Path, text: str, line: int, reason: str
) -> None:
    path = write_rule(tmp_path, "broken.yml", text)
    report = load_rules([tmp_path])
    [error] = report.errors
    assert (error.source, error.line) == (str(path), line)
    assert reason in error.reason
    assert str(error).startswith(f"{path}: line {line}: ")


def test_rules_check_reports_wrong_types_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_rule(tmp_path, "id.yml", "title: t\nid: 1\n" + BODY)
    assert main(["rules", "check", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert "id.yml: line 2: id: must be text (a UUID), not 1" in out
    assert "Traceback" not in out + err


def test_a_rule_without_its_field_mapping_is_an_error_naming_both(tmp_path: Path) -> None:
    mappings = tmp_path / "mappings"
    shutil.copytree(field_mappings_dir(), mappings)
    (mappings / "windows.yml").unlink()
    report = load_rules([bundled_rules_dir() / "windows"], load_field_mappings(mappings))
    assert not report.rules, "no Windows rule may load without the Windows field mapping"
    assert report.errors
    for error in report.errors:
        assert "needs the field mapping 'windows' (windows.yml)" in error.reason
        assert str(mappings) in error.reason
        assert error.source and error.source.endswith(".yml")
    # The other rule sets do not need it.
    assert load_rules([bundled_rules_dir() / "web"], load_field_mappings(mappings)).rules


def test_a_missing_shipped_resource_is_a_loud_error() -> None:
    with pytest.raises(ResourceError, match="reinstall socpipe"):
        package_path("socpipe.config", "no-such-folder")
    with pytest.raises(ResourceError, match=r"socpipe\.nothing is not installed"):
        package_path("socpipe.nothing")


def test_alerts_name_their_rule_set_the_same_on_every_installation() -> None:
    report = load_rules([bundled_rules_dir()])
    sources = {rule.ruleset for rule in report.rules}
    assert "rules/linux/ssh_invalid_user.yml" in sources
    assert all(ruleset.startswith("rules/") for ruleset in sources)
    assert all(rule.ruleset.startswith("rules/correlation/") for rule in report.correlations)
