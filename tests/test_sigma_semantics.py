"""Sigma semantics: every modifier and condition form, including the tricky corners."""

from __future__ import annotations

import base64

import pytest

from socpipe.detectors.errors import RuleError, UnsupportedRuleError
from tests.conftest import make_rule, matches


def sel(body: str, condition: str = "sel") -> str:
    return f"sel:\n  {body}\ncondition: {condition}\n"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("cmd.exe", True), ("CMD.EXE", True), ("cmd.exe ", False), ("xcmd.exe", False)],
)
def test_plain_value_is_whole_value_and_case_insensitive(value: str, expected: bool) -> None:
    assert matches(sel("f: cmd.exe"), {"f": value}) is expected


def test_missing_field_does_not_match() -> None:
    assert matches(sel("f: cmd.exe"), {"g": "cmd.exe"}) is False


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("'a*c'", "abbbc", True),
        ("'a*c'", "ac", True),
        ("'a*c'", "abd", False),
        ("'a?c'", "abc", True),
        ("'a?c'", "abbc", False),
        ("'a\\*c'", "a*c", True),
        ("'a\\*c'", "abc", False),
        ("'a\\?c'", "a?c", True),
        ("'a\\?c'", "abc", False),
        ("'C:\\Windows\\*'", "c:\\windows*", True),
        ("'C:\\Windows\\*'", "c:\\windows\\system32", False),
        ("'C:\\Windows\\\\*'", "c:\\windows\\system32", True),
        ("'C:\\\\Windows'", "c:\\windows", True),
        ("'*'", "", True),
        ("'?'", "", False),
        ("'line1*line2'", "line1\nline2", True),
    ],
)
def test_wildcards_and_escapes(pattern: str, value: str, expected: bool) -> None:
    assert matches(sel(f"f: {pattern}"), {"f": value}) is expected


@pytest.mark.parametrize(
    ("modifier", "value", "expected"),
    [
        ("contains", "xxEVILyy", True),
        ("contains", "xxgoodyy", False),
        ("startswith", "evil.exe", True),
        ("startswith", "not evil", False),
        ("endswith", "c:\\evil", True),
        ("endswith", "evil.exe", False),
    ],
)
def test_contains_startswith_endswith(modifier: str, value: str, expected: bool) -> None:
    assert matches(sel(f"f|{modifier}: evil"), {"f": value}) is expected


def test_value_list_is_or_and_all_makes_it_and() -> None:
    any_of = sel("f|contains: [alpha, beta]")
    all_of = sel("f|contains|all: [alpha, beta]")
    assert matches(any_of, {"f": "only alpha"})
    assert not matches(all_of, {"f": "only alpha"})
    assert matches(all_of, {"f": "beta then alpha"})


def test_list_event_value_matches_if_any_element_matches() -> None:
    assert matches(sel("f: authentication"), {"f": ["network", "authentication"]})
    assert not matches(sel("f: authentication"), {"f": ["network", "process"]})


def test_map_fields_are_and_and_list_of_maps_is_or() -> None:
    both = "sel:\n  a: 1\n  b: 2\ncondition: sel\n"
    either = "sel:\n  - a: 1\n  - b: 2\ncondition: sel\n"
    assert matches(both, {"a": "1", "b": "2"})
    assert not matches(both, {"a": "1", "b": "3"})
    assert matches(either, {"a": "9", "b": "2"})
    assert not matches(either, {"a": "9", "b": "9"})


@pytest.mark.parametrize(
    ("event", "expected"),
    [({}, True), ({"f": None}, True), ({"f": ""}, True), ({"f": "x"}, False), ({"f": []}, True)],
)
def test_null_matches_missing_or_empty(event: dict, expected: bool) -> None:
    assert matches(sel("f: null"), event) is expected


def test_empty_string_matches_only_empty() -> None:
    assert matches(sel("f: ''"), {"f": ""})
    assert not matches(sel("f: ''"), {"f": "x"})
    assert not matches(sel("f: ''"), {})


def test_null_inside_a_list() -> None:
    rule = sel("f: [null, admin]")
    assert matches(rule, {})
    assert matches(rule, {"f": "ADMIN"})
    assert not matches(rule, {"f": "guest"})


def test_exists() -> None:
    assert matches(sel("f|exists: true"), {"f": "x"})
    assert not matches(sel("f|exists: true"), {"g": "x"})
    assert matches(sel("f|exists: false"), {"g": "x"})
    assert not matches(sel("f|exists: false"), {"f": ""})


def test_numbers_and_booleans() -> None:
    assert matches(sel("EventID: 4624"), {"EventID": "4624"})
    assert matches(sel("EventID: 4624"), {"EventID": 4624})
    assert not matches(sel("EventID: 4624"), {"EventID": "46245"})
    assert matches(sel("flag: true"), {"flag": True})
    assert matches(sel("flag: true"), {"flag": "True"})
    assert not matches(sel("flag: true"), {"flag": False})


def test_regex_is_case_sensitive_unanchored_search() -> None:
    assert matches(sel("f|re: 'ab+c'"), {"f": "xxabbbcxx"})
    assert not matches(sel("f|re: 'ab+c'"), {"f": "ABBC"})
    assert matches(sel("f|re: '^ab+c$'"), {"f": "abbc"})
    assert not matches(sel("f|re: '^ab+c$'"), {"f": "xabbc"})


def test_regex_flags() -> None:
    assert matches(sel("f|re|i: 'ab+c'"), {"f": "ABBC"})
    assert matches(sel("f|re|m: '^second$'"), {"f": "first\nsecond\nthird"})
    assert not matches(sel("f|re: '^second$'"), {"f": "first\nsecond\nthird"})
    assert matches(sel("f|re|s: 'first.second'"), {"f": "first\nsecond"})
    assert not matches(sel("f|re: 'first.second'"), {"f": "first\nsecond"})


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("foo(?!bar)", "invalid perl operator: (?!"),
        ("(?<=user )root", "invalid perl operator: (?<="),
        ("(a)\\1", "invalid escape sequence: \\1"),
    ],
)
def test_regex_needing_backtracking_is_refused(pattern: str, reason: str) -> None:
    """Lookaround and backreferences would run on a backtracking engine over attacker-written
    text: the rule is an error naming the pattern and RE2's reason, never run on Python re."""
    with pytest.raises(RuleError, match="cannot run on RE2") as raised:
        make_rule(sel(f"f|re: '{pattern}'"))
    assert reason in raised.value.reason
    assert raised.value.key == "detection"


def test_base64_and_base64offset() -> None:
    assert matches(sel("f|base64: 'secret'"), {"f": base64.b64encode(b"secret").decode()})
    rule = sel("f|base64offset|contains: 'http://'")
    for prefix in (b"", b"a", b"ab"):
        encoded = base64.b64encode(prefix + b"http://198.51.100.1/x").decode()
        assert matches(rule, {"f": f"powershell -e {encoded}"}), prefix
    assert not matches(rule, {"f": base64.b64encode(b"ftp://x").decode()})


def test_wide_base64offset_finds_utf16_encoded_powershell() -> None:
    rule = sel("f|wide|base64offset|contains: 'IEX'")
    payload = base64.b64encode("x IEX (New-Object Net.WebClient)".encode("utf-16-le")).decode()
    assert matches(rule, {"f": payload})
    assert not matches(rule, {"f": base64.b64encode("Get-Date".encode("utf-16-le")).decode()})


def test_utf16_variants_encode_the_value() -> None:
    assert matches(sel("f|wide|contains: 'ab'"), {"f": "xa\x00b\x00y"})
    assert matches(sel("f|utf16be|contains: 'ab'"), {"f": "x\x00a\x00by"})


@pytest.mark.parametrize("dash", ["-", "/", "\u2013", "\u2014", "\u2015"])
def test_windash_accepts_every_dash_form(dash: str) -> None:
    assert matches(
        sel("CommandLine|windash|contains: ' -enc '"), {"CommandLine": f"ps {dash}enc AAA"}
    )


def test_windash_does_not_match_other_characters() -> None:
    assert not matches(
        sel("CommandLine|windash|contains: ' -enc '"), {"CommandLine": "ps +enc AAA"}
    )


def test_cidr_ipv4_and_ipv6() -> None:
    v4 = sel("ip|cidr: 10.0.0.0/8")
    assert matches(v4, {"ip": "10.200.3.4"})
    assert not matches(v4, {"ip": "11.0.0.1"})
    assert not matches(v4, {"ip": "not an ip"})
    v6 = sel("ip|cidr: '2001:db8::/32'")
    assert matches(v6, {"ip": "2001:db8:1::5"})
    assert not matches(v6, {"ip": "2001:db9::5"})


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("10.1.2.3", True),
        ("192.168.255.255", True),
        ("192.169.0.0", False),
        ("fe80::1", True),
        ("2001:db8::1", False),
        # The IPv4 network does not contain an IPv6 address with the same low bits.
        ("::a01:203", False),
        ("", False),
        ("-", False),
    ],
)
def test_cidr_list_mixing_versions_in_one_filter(address: str, expected: bool) -> None:
    networks = sel("ip|cidr: ['10.0.0.0/8', '192.168.0.0/16', 'fe80::/10']")
    assert matches(networks, {"ip": address}) is expected
    assert matches(sel("ip|cidr: ['10.0.0.0/8', 'fe80::/10']", "not sel"), {"ip": address}) is (
        address not in ("10.1.2.3", "fe80::1")
    )


@pytest.mark.parametrize(
    ("modifier", "value", "expected"),
    [
        ("gt", "11", True),
        ("gt", "10", False),
        ("gte", "10", True),
        ("lt", "9.5", True),
        ("lte", "10", True),
        ("lte", "10.1", False),
        ("gt", "many", False),
        ("neq", "11", True),
        ("neq", "10", False),
    ],
)
def test_numeric_comparisons(modifier: str, value: str, expected: bool) -> None:
    assert matches(sel(f"n|{modifier}: 10"), {"n": value}) is expected


def test_fieldref() -> None:
    rule = sel("a|fieldref: b")
    assert matches(rule, {"a": "Same", "b": "same"})
    assert not matches(rule, {"a": "one", "b": "two"})
    assert not matches(rule, {"a": "one"})


def test_fieldref_startswith_and_endswith() -> None:
    assert matches(sel("a|fieldref|startswith: b"), {"a": "prefix-rest", "b": "prefix"})
    assert matches(sel("a|fieldref|endswith: b"), {"a": "rest-suffix", "b": "suffix"})
    assert not matches(sel("a|fieldref|endswith: b"), {"a": "rest-suffix", "b": "rest"})


def test_cased_is_case_sensitive() -> None:
    assert matches(sel("f|cased: 'Evil'"), {"f": "Evil"})
    assert not matches(sel("f|cased: 'Evil'"), {"f": "evil"})
    assert matches(sel("f|cased|contains: 'Evil'"), {"f": "xEvilx"})


def test_timestamp_part() -> None:
    rule = sel("'@timestamp|hour': 3")
    assert matches(rule, {"@timestamp": "2026-03-03T03:15:00.000Z"})
    assert not matches(rule, {"@timestamp": "2026-03-03T04:15:00.000Z"})


def test_unconfigured_placeholder_is_reported_unsupported() -> None:
    with pytest.raises(UnsupportedRuleError, match="placeholder %admins%"):
        make_rule(sel("user|expand: '%admins%'"))


def test_keywords_search_the_raw_record() -> None:
    rule = "keywords:\n  - 'sekurlsa::'\n  - 'lsadump'\ncondition: keywords\n"
    assert matches(rule, {"event.original": "Invoke-Mimikatz sekurlsa::logonpasswords"})
    assert matches(rule, {"event.original": "LSADUMP::sam"})
    assert not matches(rule, {"event.original": "normal", "message": "sekurlsa::"})


def test_keyword_wildcards_inside() -> None:
    rule = "keywords:\n  - 'failed*root'\ncondition: keywords\n"
    assert matches(rule, {"event.original": "x Failed password for root y"})
    assert not matches(rule, {"event.original": "root failed"})


CONDITIONS = """
sel_a:
  a: 1
sel_b:
  b: 1
filter_x:
  x: 1
filter_y:
  y: 1
"""


@pytest.mark.parametrize(
    ("condition", "event", "expected"),
    [
        ("sel_a and not filter_x", {"a": "1"}, True),
        ("sel_a and not filter_x", {"a": "1", "x": "1"}, False),
        ("sel_a and not 1 of filter_*", {"a": "1", "y": "1"}, False),
        ("sel_a and not 1 of filter_*", {"a": "1"}, True),
        ("sel_a and not all of filter_*", {"a": "1", "y": "1"}, True),
        ("sel_a and not all of filter_*", {"a": "1", "x": "1", "y": "1"}, False),
        ("all of sel_*", {"a": "1"}, False),
        ("all of sel_*", {"a": "1", "b": "1"}, True),
        ("1 of sel_*", {"b": "1"}, True),
        ("1 of them", {"y": "1"}, True),
        ("all of them", {"a": "1", "b": "1", "x": "1"}, False),
        ("all of them", {"a": "1", "b": "1", "x": "1", "y": "1"}, True),
        ("any of sel_*", {"a": "1"}, True),
        ("sel_a and sel_b or filter_x", {"x": "1"}, True),
        ("sel_a and (sel_b or filter_x)", {"x": "1"}, False),
        ("sel_a and (sel_b or filter_x)", {"a": "1", "x": "1"}, True),
        ("not (sel_a or sel_b)", {}, True),
        ("not (sel_a or sel_b)", {"b": "1"}, False),
    ],
)
def test_condition_forms(condition: str, event: dict, expected: bool) -> None:
    assert matches(CONDITIONS + f"condition: {condition}\n", event) is expected


def test_several_conditions_are_alternatives() -> None:
    rule = CONDITIONS + "condition:\n  - sel_a\n  - sel_b\n"
    assert matches(rule, {"b": "1"})
    assert not matches(rule, {"x": "1"})
