"""The rule cache: an entry gives exactly the rules of the files, any change of the inputs is
a new entry, and an entry that is damaged, changed or unsafe to trust is never used."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest

from socpipe.collectors.files import FileEventReader, expand_paths
from socpipe.collectors.parsers import ParseContext
from socpipe.core.resources import bundled_rules_dir, field_mappings_dir
from socpipe.detectors import rule_cache
from socpipe.detectors.event_view import EventView
from socpipe.detectors.rule_cache import RuleCache
from socpipe.detectors.rules import RuleLoadReport, load_rules
from socpipe.pipeline import main
from tests.conftest import FILES, REPO, shared_data

RULE = (
    "title: {title}\nid: 0c7a8f2e-9f55-4e8a-9a43-6c39a2b4f0{n:02d}\n"
    "logsource: {{product: linux}}\ndetection:\n  sel: {{process.name: sshd}}\n  condition: sel\n"
)


def rule_view(report: RuleLoadReport) -> list[tuple[Any, ...]]:
    """Everything of the rules but their matcher objects (compared by what they match)."""
    return [
        (
            rule.id,
            rule.title,
            rule.level,
            rule.tags,
            rule.logsource,
            rule.prefilter,
            rule.source,
            rule.condition,
            rule.description,
            rule.author,
            rule.references,
            rule.falsepositives,
            rule.name,
            rule.ruleset,
        )
        for rule in report.rules
    ]


def events(*paths: Path) -> list[dict[str, Any]]:
    reader = FileEventReader(ParseContext("so-test"))
    return list(reader.read(expand_paths(paths)))


def verdicts(report: RuleLoadReport, sample: list[dict[str, Any]]) -> list[list[int]]:
    """For each rule, the events its matcher accepts."""
    return [
        [number for number, event in enumerate(sample) if rule.matcher(EventView(event))]
        for rule in report.rules
    ]


def assert_same_load(cached: RuleLoadReport, fresh: RuleLoadReport, sample: list[Any]) -> None:
    assert cached.cached and not fresh.cached
    assert rule_view(cached) == rule_view(fresh)
    assert cached.correlations == fresh.correlations
    assert [str(error) for error in cached.errors] == [str(error) for error in fresh.errors]
    assert [str(e) for e in cached.unsupported] == [str(e) for e in fresh.unsupported]
    assert [type(e) for e in cached.unsupported] == [type(e) for e in fresh.unsupported]
    assert cached.files == fresh.files
    assert verdicts(cached, sample) == verdicts(fresh, sample)


def test_an_entry_gives_the_rules_of_the_files(tmp_path: Path) -> None:
    # The project's rules (with correlations) and a broken and an unsupported rule beside them.
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "broken.yml").write_text("title: t\nid: 1\n")
    (extra / "filter.yml").write_text(
        "title: f\nid: 0c7a8f2e-9f55-4e8a-9a43-6c39a2b4f0aa\nfilter: {rules: [x]}\n"
    )
    paths = [bundled_rules_dir(), extra]
    cache = RuleCache(tmp_path / "cache")
    first = cache.load(paths)
    second = cache.load(paths)
    fresh = load_rules(paths)
    assert not first.cached
    assert second.errors and second.unsupported and second.correlations
    sample = events(REPO / "samples", FILES / "security_sample.evtx")
    assert_same_load(second, fresh, sample)
    assert any(verdicts(second, sample)), "the sample raises no alert: the comparison is empty"


def test_an_entry_of_the_sigmahq_windows_rules_matches_as_the_files_do(tmp_path: Path) -> None:
    paths = [shared_data("sigma", "rules", "windows")]
    cache = RuleCache(tmp_path / "cache")
    fresh = cache.load(paths)
    cached = cache.load(paths)
    sample = events(REPO / "samples" / "windows", FILES / "security_sample.evtx")
    assert_same_load(cached, fresh, sample)


def write_rules(folder: Path, *titles: str) -> None:
    folder.mkdir(exist_ok=True)
    for number, title in enumerate(titles):
        (folder / f"rule{number}.yml").write_text(RULE.format(title=title, n=number))


def test_a_changed_rule_file_is_a_new_entry(tmp_path: Path) -> None:
    rules, cache = tmp_path / "rules", RuleCache(tmp_path / "cache")
    write_rules(rules, "one", "two")
    cache.load([rules])
    assert cache.load([rules]).cached
    write_rules(rules, "one", "changed")
    changed = cache.load([rules])
    assert not changed.cached
    assert [rule.title for rule in changed.rules] == ["one", "changed"]
    (rules / "rule1.yml").unlink()
    assert [rule.title for rule in cache.load([rules]).rules] == ["one"]


def test_changed_field_mappings_are_a_new_entry(tmp_path: Path) -> None:
    rules, cache = tmp_path / "rules", RuleCache(tmp_path / "cache")
    write_rules(rules, "one")
    mappings = tmp_path / "mappings"
    shutil.copytree(field_mappings_dir(), mappings)
    cache.load([rules], mappings)
    assert cache.load([rules], mappings).cached
    first = sorted(mappings.glob("*.yml"))[0]
    first.write_text(first.read_text() + "\n# changed\n")
    assert not cache.load([rules], mappings).cached


def entry_of(cache: RuleCache) -> Path:
    [entry] = cache.folder.glob("*.rules")
    return entry


def test_a_damaged_entry_is_rebuilt(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rules, cache = tmp_path / "rules", RuleCache(tmp_path / "cache")
    write_rules(rules, "one", "two")
    cache.load([rules])
    entry = entry_of(cache)
    data = bytearray(entry.read_bytes())
    data[len(data) // 2] ^= 0x01
    entry.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        rebuilt = cache.load([rules])
    assert not rebuilt.cached
    assert "unusable, rebuilding it" in caplog.text
    assert [rule.title for rule in rebuilt.rules] == ["one", "two"]
    assert cache.load([rules]).cached


def test_an_edited_entry_is_never_trusted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # Valid JSON, a plausible rule set: only the MAC tells it apart.
    rules, cache = tmp_path / "rules", RuleCache(tmp_path / "cache")
    write_rules(rules, "one")
    cache.load([rules])
    entry = entry_of(cache)
    entry.write_bytes(entry.read_bytes().replace(b'"title":"one"', b'"title":"evil"'))
    with caplog.at_level(logging.WARNING):
        report = cache.load([rules])
    assert not report.cached
    assert [rule.title for rule in report.rules] == ["one"]
    assert "MAC does not verify" in caplog.text


#: Replaced by a condition nested deeper than the decoder's recursion allows.
DEEP = "(deep)"
DEEP_TEXT = b'["not",' * 1_000 + b'["never"]' + b"]" * 1_000


def sign(cache: RuleCache, entry: Path, edit: Any) -> None:
    """Rewrite an entry's contents with ``edit`` and a valid MAC (as a bug in the writer
    would produce: the MAC then verifies, and decoding must still refuse it)."""
    header, _, body = entry.read_bytes().partition(b"\n")
    contents = orjson.loads(body)
    edit(contents)
    # Written as text: both JSON encoders refuse to nest that deep.
    body = orjson.dumps(contents).replace(b'"' + DEEP.encode() + b'"', DEEP_TEXT)
    secret = (cache.folder / "secret").read_bytes()
    key = bytes.fromhex(contents["key"])
    mac = hmac.new(secret, key + body, hashlib.sha256).hexdigest().encode()
    entry.write_bytes(b" ".join([*header.split(b" ")[:2], mac]) + b"\n" + body)


@pytest.mark.parametrize(
    "edit",
    [
        lambda c: c["report"]["rules"][0].update(condition=["eval", "__import__('os')"]),
        lambda c: c["report"]["rules"][0].update(condition=["string", "f", ["x", 7], False]),
        lambda c: c["report"]["rules"][0].update(condition=["regex", "f", "x", "z"]),
        lambda c: c["report"]["rules"][0].update(title=5),
        lambda c: c["report"]["rules"][0]["prefilter"][0][0].__setitem__(2, "sometimes"),
        lambda c: c["report"].update(errors=[["a", "b"]]),
        lambda c: c.update(key="00" * 32),
        lambda c: c["report"]["rules"][0].update(condition=DEEP),
    ],
)
def test_an_entry_that_verifies_but_does_not_read_back_is_rebuilt(
    tmp_path: Path, edit: Any
) -> None:
    rules, cache = tmp_path / "rules", RuleCache(tmp_path / "cache")
    write_rules(rules, "one")
    cache.load([rules])
    sign(cache, entry_of(cache), edit)
    report = cache.load([rules])
    assert not report.cached
    assert report.rules[0].matcher(EventView({"process.name": "sshd"}))
    assert cache.load([rules]).cached


@pytest.mark.parametrize(("target", "mode"), [("folder", 0o777), ("secret", 0o644)])
def test_a_cache_others_can_change_is_not_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, target: str, mode: int
) -> None:
    rules, cache = tmp_path / "rules", RuleCache(tmp_path / "cache")
    write_rules(rules, "one")
    cache.load([rules])
    (cache.folder if target == "folder" else cache.folder / "secret").chmod(mode)
    with caplog.at_level(logging.WARNING):
        report = cache.load([rules])
    assert not report.cached
    assert [rule.title for rule in report.rules] == ["one"]
    assert "rule cache not used" in caplog.text
    assert "by other users" in caplog.text


def test_old_entries_are_evicted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rule_cache, "MAX_ENTRIES", 2)
    cache = RuleCache(tmp_path / "cache")
    for number in range(3):
        folder = tmp_path / f"rules{number}"
        write_rules(folder, f"set {number}")
        cache.load([folder])
        os.utime(entry_of_set(cache, folder), (number, number))
    assert len(list(cache.folder.glob("*.rules"))) == 2
    assert not cache.load([tmp_path / "rules0"]).cached
    assert cache.load([tmp_path / "rules2"]).cached


def entry_of_set(cache: RuleCache, folder: Path) -> Path:
    for entry in cache.folder.glob("*.rules"):
        if str(folder).encode() in entry.read_bytes():
            return entry
    raise AssertionError(f"no entry for {folder}")


def test_scan_uses_the_cache_and_the_commands_show_and_clear_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "cache"
    rules = tmp_path / "rules"
    write_rules(rules, "one")
    scan = ["scan", str(REPO / "samples" / "linux"), "--rules", str(rules), "--no-progress"]
    scan += ["--rules-profile", "none"]
    assert main([*scan, "--no-rule-cache", "--rule-cache", str(cache)]) == 0
    assert not list(cache.glob("*.rules"))
    assert main([*scan, "--rule-cache", str(cache)]) == 0
    assert main([*scan, "--rule-cache", str(cache)]) == 0
    assert "from the rule cache" in capsys.readouterr().err
    assert main(["rules", "cache", "info", "--rule-cache", str(cache)]) == 0
    shown = capsys.readouterr().out
    assert "1 entries" in shown and "1 rules" in shown and str(rules) in shown
    assert main(["rules", "cache", "clear", "--rule-cache", str(cache)]) == 0
    assert "1 entries deleted" in capsys.readouterr().out
    assert not list(cache.glob("*.rules"))


def test_the_cache_folder_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCPIPE_CACHE_DIR", "/somewhere")
    assert rule_cache.default_cache_folder() == Path("/somewhere/rules")
    monkeypatch.delenv("SOCPIPE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", "/xdg")
    assert rule_cache.default_cache_folder() == Path("/xdg/socpipe/rules")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert rule_cache.default_cache_folder() == Path.home() / ".cache" / "socpipe" / "rules"
