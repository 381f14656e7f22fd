"""The engine must return exactly what evaluating every routed rule would: the literal
prefilter may only skip rules that cannot match."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from socpipe.collectors.files import FileEventReader, expand_paths
from socpipe.collectors.parsers import ParseContext, parse_detected
from socpipe.core.resources import bundled_rules_dir
from socpipe.detectors.engine import (
    CACHE_TRIAL_LOOKUPS,
    CACHED_VALUE_MAX_CHARS,
    CACHED_VALUES,
    ROUTING_CACHE_KEYS,
    SUBSTRING_PREFILTER_MIN_RULES,
    SigmaEngine,
    _RuleGroup,
)
from socpipe.detectors.event_view import EventView
from socpipe.detectors.logsource import routing_key
from socpipe.detectors.rules import compile_rule, load_rules
from socpipe.detectors.values import AtomKind
from socpipe.scanner.rule_tests import TEST_CONTEXT
from tests.conftest import FILES, REPO, SHARED_DATA


def brute_force(engine: SigmaEngine, event: dict) -> list[str]:
    view = EventView(event)
    return [rule.id for rule in engine.rules_for(event) if rule.matcher(view)]


def corpus_events() -> list[dict]:
    paths = [REPO / "samples", FILES / "security_sample.evtx"]
    loghub = SHARED_DATA / "loghub" / "2k"
    paths += [
        loghub / name / f"{name}_2k.log"
        for name in ("OpenSSH", "Linux", "Apache")
        if loghub.exists()
    ]
    events = list(FileEventReader(ParseContext()).read(expand_paths(paths)))
    for tests_file in bundled_rules_dir().rglob("*.tests.yml"):
        cases = yaml.safe_load(tests_file.read_text())
        for case in [*cases["match"], *cases["no_match"]]:
            # Correlation cases are sequences of lines or {line, repeat} items.
            for item in case if isinstance(case, list) else [case]:
                line = item["line"] if isinstance(item, dict) else item
                events.append(parse_detected(line, TEST_CONTEXT)[0])
    return events


def test_prefilter_never_drops_a_match_on_real_events() -> None:
    rule_paths = [bundled_rules_dir()]
    if (SHARED_DATA / "sigma").exists():
        rule_paths.append(SHARED_DATA / "sigma")
    engine = SigmaEngine(load_rules(rule_paths).rules)
    hits = 0
    for event in corpus_events():
        expected = brute_force(engine, event)
        assert [rule.id for rule in engine.match(event)] == expected
        hits += len(expected)
    assert hits > 100


# The Kelvin sign and the dotted capital I lower-case to ASCII or to two characters: the
# prefilter must not lose a regex match on them.
FIELD_VALUES = st.text(alphabet="abcAB*?\\ -\u212a\u0130", min_size=0, max_size=6)
LITERAL_PATTERN = st.tuples(
    st.sampled_from(["", "|contains", "|startswith", "|endswith", "|contains|all"]),
    st.lists(FIELD_VALUES, min_size=1, max_size=3),
)
# Regexes: with and without literals, flags and anchors.
REGEX_PATTERN = st.tuples(
    st.sampled_from(["|re", "|re|i"]),
    st.lists(
        st.sampled_from(["a.c", "^A", "b$", "\\W", "[a-c]+\\*", "a|B", "k", "(a)+c?", "^$"]),
        min_size=1,
        max_size=2,
    ),
)
PATTERN = st.one_of(LITERAL_PATTERN, REGEX_PATTERN)


@st.composite
def random_rule(draw: st.DrawFn) -> dict:
    selections = {}
    for index in range(draw(st.integers(1, 3))):
        items = {}
        for field in draw(
            st.lists(st.sampled_from(["f", "g"]), min_size=1, max_size=2, unique=True)
        ):
            modifier, values = draw(PATTERN)
            items[field + modifier] = values
        selections[f"sel{index}"] = items
    names = list(selections)
    condition = draw(
        st.sampled_from(
            [" or ".join(names), " and ".join(names), f"{names[0]} and not 1 of sel*", "1 of them"]
        )
    )
    return {
        "title": "r",
        "id": f"00000000-0000-0000-0000-{draw(st.integers(0, 10**11)):012d}",
        "logsource": {"product": "linux"},
        "detection": {**selections, "condition": condition},
    }


@settings(max_examples=150, deadline=None)
@given(
    st.lists(random_rule(), min_size=1, max_size=6, unique_by=lambda rule: rule["id"]),
    st.lists(st.fixed_dictionaries({"f": FIELD_VALUES, "g": FIELD_VALUES}), min_size=1, max_size=5),
)
def test_prefilter_is_sound_on_random_rules(rules: list[dict], events: list[dict]) -> None:
    compiled = [compile_rule(rule, "random.yml") for rule in rules]
    # Small groups skip the RE2 sets; a threshold of 0 makes these few rules use them too.
    for set_threshold in (SUBSTRING_PREFILTER_MIN_RULES, 0):
        with patch("socpipe.detectors.engine.SUBSTRING_PREFILTER_MIN_RULES", set_threshold):
            engine = SigmaEngine(compiled)
            for event in events:
                event = {**event, "event.module": "system"}
                # Every rule is routed to the event, so the comparison below is never vacuous.
                assert len(engine.rules_for(event)) == len(rules)
                assert [rule.id for rule in engine.match(event)] == brute_force(engine, event)


def test_routing_keeps_windows_rules_off_linux_events() -> None:
    engine = SigmaEngine(load_rules([bundled_rules_dir()]).rules)
    linux, _ = parse_detected(
        "Mar  3 10:00:01 web01 sshd[1]: Accepted password for root from 203.0.113.5 port 1 ssh2",
        TEST_CONTEXT,
    )
    routed = engine.rules_for(linux)
    assert routed
    assert all(rule.logsource.product in (None, "linux") for rule in routed)
    assert all(rule.logsource.service in (None, "sshd", "auth", "syslog") for rule in routed)
    windows, _ = parse_detected(
        json.dumps(
            {
                "winlog": {
                    "channel": "Security",
                    "event_id": 4625,
                    "event_data": {"TargetUserName": "x"},
                }
            }
        ),
        TEST_CONTEXT,
    )
    assert {rule.logsource.product for rule in engine.rules_for(windows)} == {"windows"}


def test_events_of_unknown_sources_meet_no_rules() -> None:
    engine = SigmaEngine(load_rules([bundled_rules_dir()]).rules)
    event, _ = parse_detected("something nobody parses", TEST_CONTEXT)
    assert engine.match(event) == []


@pytest.mark.parametrize("bad", ["rules/does-not-exist"])
def test_loading_a_missing_folder_yields_nothing(bad: str) -> None:
    report = load_rules([Path(bad)])
    assert report.rules == []


def test_routing_cache_stays_bounded_when_program_names_never_repeat() -> None:
    engine = SigmaEngine(load_rules([bundled_rules_dir()]).rules)
    for number in range(ROUTING_CACHE_KEYS + 500):
        engine.match({"event.module": "system", "process.name": f"prog{number}", "message": "x"})
    assert len(engine._groups_by_key) <= ROUTING_CACHE_KEYS
    root_login = {
        "event.module": "system",
        "process.name": "sshd",
        "event.action": "ssh_login",
        "event.outcome": "success",
        "user.name": "root",
    }
    assert {rule.title for rule in engine.match(root_login)} == {
        "SSH Login As Root Accepted",
        "SSH Login Succeeded",
    }


FAILED_ROOT_LOGIN = {
    "event.module": "system",
    "process.name": "sshd",
    "event.action": "ssh_login",
    "event.outcome": "failure",
    "user.name": "root",
}


def remembered(group: _RuleGroup) -> dict[str, dict[Any, frozenset[int]]]:
    """The prefilter answers a rule group remembers, by field (fields with none left out)."""
    return {tests.field: tests.by_value for tests in group.field_tests.values() if tests.by_value}


def test_prefilter_value_cache_stays_bounded_and_keeps_answering() -> None:
    engine = SigmaEngine(load_rules([bundled_rules_dir()]).rules)
    failed = FAILED_ROOT_LOGIN
    expected = {rule.id for rule in engine.match(failed)}
    assert expected
    # event.action is indexed for sshd events: every new action is a new cache entry. Half
    # the lookups repeat a value, so the field stays worth remembering.
    for number in range(CACHED_VALUES + 500):
        engine.match({**failed, "event.action": f"action{number}"})
        engine.match(failed)
    [group] = set(engine._groups_by_key.values())
    cached = sum(len(values) for values in remembered(group).values())
    assert 500 <= cached <= CACHED_VALUES
    # Same answers after the cache started over, and for a value too long to be cached.
    assert {rule.id for rule in engine.match(failed)} == expected
    long_action = {**failed, "event.action": "ssh_login" + " " * CACHED_VALUE_MAX_CHARS}
    assert [rule.id for rule in engine.match(long_action)] == brute_force(engine, long_action)


def test_fields_whose_values_never_repeat_stop_being_remembered() -> None:
    engine = SigmaEngine(load_rules([bundled_rules_dir()]).rules)
    failed = FAILED_ROOT_LOGIN
    for number in range(CACHE_TRIAL_LOOKUPS + 100):
        event = {**failed, "event.action": f"action{number}"}
        assert [rule.id for rule in engine.match(event)] == brute_force(engine, event)
    [group] = set(engine._groups_by_key.values())
    assert not group.field_tests["event.action"].cacheable
    assert "event.action" not in remembered(group)
    # A field whose values recur (the same outcome on every event) is still remembered, and
    # the answers stay those of evaluating every rule.
    assert group.field_tests["event.outcome"].cacheable
    assert list(remembered(group)["event.outcome"]) == ["failure"]
    assert group._cached_values == sum(len(values) for values in remembered(group).values())
    assert [rule.id for rule in engine.match(failed)] == brute_force(engine, failed)


def test_small_groups_index_substrings_without_re2_sets() -> None:
    """The sshd group is too small for RE2 sets; its keyword rule must still be skipped on
    lines without its phrase (it used to be evaluated on every sshd line) and kept on others."""
    engine = SigmaEngine(load_rules([bundled_rules_dir()]).rules)
    line = "Mar  3 10:00:09 web01 sshd[2213]: Disconnecting: {} for root [preauth]"
    for phrase, expected in (("Too many authentication failures", True), ("Bye", False)):
        event, _ = parse_detected(line.format(phrase), TEST_CONTEXT)
        group = engine._group(routing_key(event))
        assert group.rules and not group.unfiltered
        titles = [group.rules[i].title for i in group.candidates(EventView(event))]
        assert ("SSH Too Many Authentication Failures" in titles) is expected
        assert [rule.id for rule in engine.match(event)] == brute_force(engine, event)


def test_lone_surrogates_in_fields_are_matched_not_fatal() -> None:
    """A JSON escape can put a lone surrogate in any field; RE2 takes UTF-8, which cannot
    encode one, and the scan used to stop with UnicodeEncodeError in the prefilter."""
    rules = [
        {
            "title": name,
            "id": f"00000000-0000-0000-0000-00000000020{number}",
            "logsource": {"product": "linux"},
            "detection": {"selection": {field: value}, "condition": "selection"},
        }
        for number, (name, field, value) in enumerate(
            [
                ("contains", "url.path|contains", "admin"),
                ("regex", "url.path|re", "^/a.b"),
                ("keyword", "message|contains", "evil"),
            ]
        )
    ]
    with patch("socpipe.detectors.engine.SUBSTRING_PREFILTER_MIN_RULES", 0):
        engine = SigmaEngine([compile_rule(rule, "s.yml") for rule in rules])
        event = {"event.module": "system", "url.path": "/a\ud800b/admin", "message": "\udcff"}
        assert [rule.title for rule in engine.match(event)] == ["contains", "regex"]
        assert engine.match({**event, "message": "evil \ud800"})[-1].title == "keyword"


def test_raw_records_are_not_remembered_by_the_prefilter() -> None:
    # Keyword rules are indexed on the raw record, which differs on every event: remembering
    # it would fill the cache with entries that never hit again.
    keyword_rule = {
        "title": "keyword",
        "id": "00000000-0000-0000-0000-000000000001",
        "logsource": {"product": "linux"},
        "detection": {"keywords": ["evil"], "condition": "keywords"},
    }
    with patch("socpipe.detectors.engine.SUBSTRING_PREFILTER_MIN_RULES", 0):
        engine = SigmaEngine([compile_rule(keyword_rule, "k.yml")])
        for number in range(100):
            event = {"event.module": "system", "event.original": f"line {number} evil"}
            assert len(engine.match(event)) == 1
    [group] = set(engine._groups_by_key.values())
    assert "event.original" in group.field_tests
    assert remembered(group) == {}


def test_numbers_share_prefilter_answers_but_booleans_do_not() -> None:
    # Integers are remembered like short strings; True == 1 in a dictionary, but it reads
    # "true" to Sigma, so it must not reuse the answer remembered for 1.
    rules = [
        {
            "title": name,
            "id": f"00000000-0000-0000-0000-00000000010{number}",
            "logsource": {"product": "linux"},
            "detection": {"selection": {"f": value}, "condition": "selection"},
        }
        for number, (name, value) in enumerate([("one", 1), ("true", "true"), ("404", 404)])
    ]
    engine = SigmaEngine([compile_rule(rule, "n.yml") for rule in rules])
    seen = []
    for value in (1, True, 1, "1", 404, True, 1.0, 404):
        event = {"event.module": "system", "f": value}
        matched = [rule.title for rule in engine.match(event)]
        assert matched == [
            rule.title for rule in engine.rules_for(event) if rule.matcher(EventView(event))
        ]
        seen.append(matched)
    assert seen == [["one"], ["true"], ["one"], ["one"], ["404"], ["true"], [], ["404"]]
    [group] = set(engine._groups_by_key.values())
    assert 404 in remembered(group)["f"]


def test_a_rule_is_evaluated_only_when_two_of_its_clauses_hit() -> None:
    # An event id alone admits the rule for most events of its source; the second clause
    # (the logon type) keeps it from being evaluated on the others.
    rule = {
        "title": "network logon from outside",
        "id": "00000000-0000-0000-0000-000000000002",
        "logsource": {"product": "linux"},
        "detection": {
            "selection": {"EventID": 4624, "LogonType": 3},
            "filter": {"IpAddress|startswith": "10."},
            "condition": "selection and not filter",
        },
    }
    compiled = compile_rule(rule, "r.yml")
    assert {atom for clause in compiled.prefilter for atom in clause} == {
        ("EventID", "4624", AtomKind.EQUALS),
        ("LogonType", "3", AtomKind.EQUALS),
    }
    engine = SigmaEngine([compiled])
    base = {"event.module": "system", "EventID": "4624", "IpAddress": "203.0.113.9"}
    group = engine._group(routing_key(base))
    assert group.candidates(EventView({**base, "LogonType": "2"})) == []
    assert group.candidates(EventView({**base, "LogonType": "3"})) == [0]
    assert [r.id for r in engine.match({**base, "LogonType": "3"})] == [compiled.id]


def test_few_valued_fields_are_not_taken_for_rare_ones() -> None:
    # "success" is longer than "root", but event.outcome takes a handful of values: the user
    # is what makes this rule rare, so it is one of the two clauses the index uses.
    rule = {
        "title": "root login",
        "id": "00000000-0000-0000-0000-000000000003",
        "logsource": {"product": "linux", "service": "sshd"},
        "detection": {
            "selection": {
                "event.action": "ssh_login",
                "event.outcome": "success",
                "user.name": "root",
            },
            "condition": "selection",
        },
    }
    compiled = compile_rule(rule, "r.yml")
    assert compiled.prefilter[0] == frozenset({("user.name", "root", AtomKind.EQUALS)})
    engine = SigmaEngine([compiled])
    login = {"event.module": "system", "process.name": "sshd", "event.action": "ssh_login"}
    group = engine._group(routing_key(login))
    assert (
        group.candidates(EventView({**login, "event.outcome": "success", "user.name": "deploy"}))
        == []
    )
    root = {**login, "event.outcome": "success", "user.name": "root"}
    assert [r.id for r in engine.match(root)] == [compiled.id]


def test_the_windows_channel_table_is_pysigmas() -> None:
    # logsource.py keeps a copy so that routing never imports pySigma's processing machinery.
    from sigma.pipelines.common import windows_logsource_mapping

    from socpipe.detectors.logsource import _WINDOWS_CHANNELS

    def as_tuples(mapping: dict[str, Any]) -> dict[str, tuple[str, ...]]:
        return {
            service: (channels,) if isinstance(channels, str) else tuple(channels)
            for service, channels in mapping.items()
        }

    assert as_tuples(dict(_WINDOWS_CHANNELS)) == as_tuples(windows_logsource_mapping)
