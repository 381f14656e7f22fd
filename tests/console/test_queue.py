"""The queue filter: parameters to clauses (closed hidden by default), cursors, CSV safety."""

from __future__ import annotations

import pytest

from socpipe.console.queue import FilterError, QueueFilter, decode_cursor, encode_cursor, export_row


def parse(**params: str | list[str]) -> QueueFilter:
    multi = {k: v if isinstance(v, list) else [v] for k, v in params.items()}
    return QueueFilter.from_params({k: v[-1] for k, v in multi.items()}, multi)


def test_closed_alerts_are_hidden_unless_asked() -> None:
    assert parse().clauses() == [
        {"terms": {"alert.status": ["new", "acknowledged", "in_progress"]}}
    ]
    assert parse(closed="1").clauses() == []
    assert parse(status=["closed"]).clauses() == [{"terms": {"alert.status": ["closed"]}}]


def test_every_control_becomes_a_clause() -> None:
    clauses = parse(
        level=["high", "critical"],
        assignee="-",
        agency="so-a",
        rule="r1",
        host="web01",
        since="now-24h",
        until="2026-03-04T00:00:00Z",
        q="user.name:root",
        closed="1",
    ).clauses()
    assert clauses == [
        {"terms": {"rule.level": ["high", "critical"]}},
        {"bool": {"must_not": [{"exists": {"field": "alert.assignee"}}]}},
        {"term": {"organization.id": "so-a"}},
        {"term": {"rule.id": "r1"}},
        {"term": {"host.name": "web01"}},
        {"range": {"@timestamp": {"gte": "now-24h", "lt": "2026-03-04T00:00:00Z"}}},
        {"term": {"user.name": "root"}},
    ]


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"level": "severe"}, "level"),
        ({"status": "done"}, "status"),
        ({"group": "user"}, "group"),
        ({"size": "5000"}, "size"),
        ({"since": "yesterday"}, "since"),
        ({"q": "nosuch.field:x"}, "unknown field"),
        ({"after": "!!!"}, "cursor"),
        ({"host": "x" * 300}, "longer"),
    ],
)
def test_bad_parameters_are_named(params: dict[str, str], reason: str) -> None:
    with pytest.raises(FilterError, match=reason):
        parse(**params).search_after()


def test_params_round_trip() -> None:
    chosen = parse(level=["high"], q="host.name:a", group="rule", closed="1")
    pairs = chosen.params()
    multi: dict[str, list[str]] = {}
    for key, value in pairs:
        multi.setdefault(key, []).append(value)
    again = QueueFilter.from_params({k: v[-1] for k, v in multi.items()}, multi)
    assert again == chosen and again.clauses() == chosen.clauses()


def test_cursor_round_trip_and_bounds() -> None:
    assert decode_cursor(encode_cursor([1772532932000, "abc"])) == [1772532932000, "abc"]
    with pytest.raises(FilterError):
        decode_cursor(encode_cursor([{"x": 1}]))  # type: ignore[list-item]
    with pytest.raises(FilterError):
        decode_cursor(encode_cursor([1, 2, 3, 4, 5]))


def test_export_cells_cannot_become_formulas() -> None:
    row = export_row(
        {
            "alert.id": "a",
            "rule.name": '=HYPERLINK("x")',
            "user.name": "-2+3",
            "threat.technique.id": ["T1110", "T1078"],
        }
    )
    assert row[0] == "a"
    assert '\'=HYPERLINK("x")' in row and "'-2+3" in row and "T1110 T1078" in row
