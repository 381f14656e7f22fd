"""The query language: what it compiles to, what it refuses, and fuzzing for anything else."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from socpipe.console.querylang import (
    FIELDS,
    FREE_TEXT_FIELDS,
    MAX_CHARS,
    MAX_DEPTH,
    Kind,
    QueryError,
    compile_query,
)


def test_the_issue_example() -> None:
    assert compile_query("user.name:root and not source.ip:10.0.0.0/8") == {
        "bool": {
            "filter": [
                {"term": {"user.name": "root"}},
                {"bool": {"must_not": [{"term": {"source.ip": "10.0.0.0/8"}}]}},
            ]
        }
    }


def test_and_binds_tighter_than_or_and_side_by_side_means_and() -> None:
    a, b, c = ({"term": {"host.name": name}} for name in "abc")
    assert compile_query("host.name:a or host.name:b and host.name:c") == {
        "bool": {"should": [a, {"bool": {"filter": [b, c]}}], "minimum_should_match": 1}
    }
    assert compile_query("host.name:a host.name:b") == {"bool": {"filter": [a, b]}}
    assert compile_query("(host.name:a or host.name:b) and host.name:c") == {
        "bool": {"filter": [{"bool": {"should": [a, b], "minimum_should_match": 1}}, c]}
    }


def test_value_lists_wildcards_and_exists() -> None:
    assert compile_query("rule.level:(high or critical)") == {
        "bool": {
            "should": [{"term": {"rule.level": "high"}}, {"term": {"rule.level": "critical"}}],
            "minimum_should_match": 1,
        }
    }
    assert compile_query("host.name:web*") == {"wildcard": {"host.name": {"value": "web*"}}}
    assert compile_query('host.name:"web*"') == {"term": {"host.name": "web*"}}
    assert compile_query("alert.assignee:*") == {"exists": {"field": "alert.assignee"}}


def test_quoted_values_keep_spaces_and_escapes() -> None:
    assert compile_query(r'rule.name:"SSH \"Brute\" Force \\ x"') == {
        "term": {"rule.name": 'SSH "Brute" Force \\ x'}
    }


def test_types_are_checked() -> None:
    assert compile_query("destination.port >= 1024") == {
        "range": {"destination.port": {"gte": 1024}}
    }
    assert compile_query("@timestamp>now-24h") == {"range": {"@timestamp": {"gt": "now-24h"}}}
    assert compile_query("@timestamp < 2026-03-03T10:00:00Z") == {
        "range": {"@timestamp": {"lt": "2026-03-03T10:00:00Z"}}
    }
    assert compile_query("source.ip:2001:db8::1") == {"term": {"source.ip": "2001:db8::1"}}
    for bad, reason in (
        ("destination.port:http", "not a number"),
        ("source.ip:example.org", "not an IP"),
        ("@timestamp:yesterday", "is a time"),
        ("@timestamp > yesterday", "not a time"),
        ("host.name > a", "is text"),
        ("source.ip > 10.0.0.0/8", "not an IP address"),
    ):
        with pytest.raises(QueryError, match=reason):
            compile_query(bad)


def test_unknown_fields_are_refused_with_their_place() -> None:
    with pytest.raises(QueryError, match=r"unknown field 'usr.name' \(.*\) \(at character 13\)"):
        compile_query("host.name:a usr.name:root")
    with pytest.raises(QueryError, match="unknown field"):
        compile_query("events.event.original:x")


def test_free_text_searches_a_few_fields_ignoring_case() -> None:
    query = compile_query("mimikatz")
    clauses = query["bool"]["should"]
    assert [next(iter(c["wildcard"])) for c in clauses] == list(FREE_TEXT_FIELDS)
    assert clauses[0]["wildcard"]["rule.name"] == {"value": "*mimikatz*", "case_insensitive": True}
    # A user's * is literal in free text (no leading-wildcard tricks beyond the one we add).
    assert (
        compile_query('"a*b"')["bool"]["should"][0]["wildcard"]["rule.name"]["value"] == "*a\\*b*"
    )


@pytest.mark.parametrize(
    "text",
    [
        "(",
        ")",
        "host.name:",
        "host.name:(a or",
        "not",
        "a or",
        "host.name:(a b)",
        '"open',
        "=1",
        'a \\ b"',
        "destination.port <",
        "and",
    ],
)
def test_broken_queries_say_why(text: str) -> None:
    with pytest.raises(QueryError):
        compile_query(text)


def test_bounds() -> None:
    with pytest.raises(QueryError, match="longer than"):
        compile_query("a" * (MAX_CHARS + 1))
    with pytest.raises(QueryError, match="nests too deeply"):
        compile_query("(" * (MAX_DEPTH + 2) + "a" + ")" * (MAX_DEPTH + 2))
    with pytest.raises(QueryError, match="nests too deeply"):
        compile_query("not " * 200 + "a")
    with pytest.raises(QueryError, match="more than"):
        compile_query(" ".join(["a"] * 300))
    assert compile_query("") == {"match_all": {}}


def _fields_named(query: Any) -> set[str]:
    """Every field name a compiled query refers to."""
    found: set[str] = set()
    if isinstance(query, dict):
        for key, value in query.items():
            if key in ("term", "wildcard", "range"):
                found.update(value)
            elif key == "exists":
                found.add(value["field"])
            else:
                found |= _fields_named(value)
    elif isinstance(query, list):
        for item in query:
            found |= _fields_named(item)
    return found


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=MAX_CHARS + 20))
def test_any_text_compiles_or_is_refused_cleanly(text: str) -> None:
    try:
        query = compile_query(text)
    except QueryError:
        return
    assert _fields_named(query) <= set(FIELDS) | set(FREE_TEXT_FIELDS)


KEYWORD_FIELDS = sorted(name for name, kind in FIELDS.items() if kind is Kind.KEYWORD)
WORDS = st.text(alphabet="abcxyz019.-_*", min_size=1, max_size=8).filter(
    lambda w: w.lower() not in ("and", "or", "not")
)
TERMS = st.builds(lambda f, v: f"{f}:{v}", st.sampled_from(KEYWORD_FIELDS), WORDS) | st.builds(
    lambda f, v: f'{f}:"{v}"',
    st.sampled_from(KEYWORD_FIELDS),
    st.text(alphabet="ab c(", max_size=6),
)


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return (
        st.builds(lambda a, b: f"{a} and {b}", children, children)
        | st.builds(lambda a, b: f"{a} or {b}", children, children)
        | st.builds(lambda a: f"not {a}", children)
        | st.builds(lambda a: f"({a})", children)
    )


@settings(max_examples=300, deadline=None)
@given(st.recursive(TERMS, _combine, max_leaves=12))
def test_well_formed_queries_compile(text: str) -> None:
    if len(text) > MAX_CHARS:
        return
    try:
        query = compile_query(text)
    except QueryError as error:
        assert "nests too deeply" in str(error) or "more than" in str(error)
        return
    assert _fields_named(query) <= set(KEYWORD_FIELDS)
