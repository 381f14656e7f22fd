"""Merging incident updates into the stored incident (socpipe.sinks.incidents): order-free,
idempotent, never backwards, never touching triage."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from socpipe.sinks.incidents import LIST_CAP, changes, fold, pipeline_fields


def update(count: int, severity: int, first: str, last: str, users: list[str]) -> dict[str, Any]:
    level = ["", "informational", "low", "medium", "high", "critical"][severity]
    return {
        "@timestamp": first,
        "incident.id": "i1",
        "incident.level": level,
        "incident.title": f"title at {level}",
        "event.severity": severity,
        "incident.first_seen": first,
        "incident.last_seen": last,
        "incident.alert_count": count,
        "incident.alerts": [{"alert.id": f"a{n}"} for n in range(count)],
        "incident.alert_ids": [f"a{n}" for n in range(count)],
        "user.name": users,
        "incident.window_start": "2026-03-03T10:00:00.000Z",
        "incident.previous_level": None,
    }


UPDATES = [
    update(1, 3, "2026-03-03T10:00:05.000Z", "2026-03-03T10:00:05.000Z", ["root"]),
    update(4, 3, "2026-03-03T10:00:05.000Z", "2026-03-03T10:02:00.000Z", ["root", "admin"]),
    update(2, 4, "2026-03-03T10:00:01.000Z", "2026-03-03T10:01:00.000Z", ["oracle"]),
    update(9, 5, "2026-03-03T10:00:05.000Z", "2026-03-03T10:03:00.000Z", ["root"]),
]


def apply(stored: dict[str, Any], incoming: dict[str, Any]) -> dict[str, Any]:
    return {**stored, **changes(stored, pipeline_fields(incoming))}


def test_the_merge_does_not_depend_on_order_and_never_moves_back() -> None:
    results = []
    for order in itertools.permutations(UPDATES):
        stored = pipeline_fields(order[0])
        for incoming in order[1:]:
            stored = apply(stored, incoming)
        results.append(stored)
    merged = results[0]
    for result in results:
        for name in (
            "incident.first_seen",
            "incident.last_seen",
            "incident.alert_count",
            "incident.level",
            "incident.title",
            "event.severity",
            "incident.alerts",
        ):
            assert result[name] == merged[name], name
        assert sorted(result["user.name"]) == ["admin", "oracle", "root"]
    assert merged["incident.first_seen"] == "2026-03-03T10:00:01.000Z"
    assert merged["@timestamp"] == "2026-03-03T10:00:01.000Z"
    assert merged["incident.last_seen"] == "2026-03-03T10:03:00.000Z"
    assert merged["incident.alert_count"] == 9 and len(merged["incident.alerts"]) == 9
    assert (merged["incident.level"], merged["incident.title"]) == ("critical", "title at critical")


@pytest.mark.parametrize("incoming", UPDATES)
def test_an_update_already_merged_changes_nothing(incoming: dict[str, Any]) -> None:
    stored = pipeline_fields(UPDATES[0])
    for other in UPDATES:
        stored = apply(stored, other)
    assert changes(stored, pipeline_fields(incoming)) == {}


def test_triage_and_creation_fields_are_never_written() -> None:
    stored = {
        **pipeline_fields(UPDATES[0]),
        "incident.status": "closed",
        "incident.assignee": "hanh",
    }
    hostile = {
        **UPDATES[3],
        "incident.status": "new",
        "incident.window_start": "1970-01-01T00:00:00.000Z",
    }
    changed = changes(stored, pipeline_fields(hostile))
    assert "incident.status" not in changed and "incident.assignee" not in changed
    assert "incident.window_start" not in changed
    assert "incident.previous_level" not in pipeline_fields(hostile)
    with pytest.raises(KeyError, match=r"incident\.alert_count"):
        pipeline_fields({"incident.id": "x", "event.severity": 3})


def test_lists_are_capped_and_fold_merges_a_batch_per_incident() -> None:
    many = {**UPDATES[0], "incident.alert_ids": [f"x{n}" for n in range(LIST_CAP + 50)]}
    stored = pipeline_fields(UPDATES[0])
    assert len(changes(stored, pipeline_fields(many))["incident.alert_ids"]) == LIST_CAP
    other = {**UPDATES[1], "incident.id": "i2"}
    folded = fold([UPDATES[0], other, UPDATES[3], UPDATES[2]])
    assert sorted(folded) == ["i1", "i2"]
    assert folded["i1"]["incident.alert_count"] == 9
    assert folded["i1"]["incident.first_seen"] == "2026-03-03T10:00:01.000Z"
    assert folded["i2"]["incident.alert_count"] == 4
