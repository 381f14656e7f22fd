"""Triage rules that need no server: allowed values, what a change writes, history bounds."""

from __future__ import annotations

from typing import Any

import pytest

from socpipe.console.roles import Role
from socpipe.console.scope import AlertHit
from socpipe.console.triage import (
    HISTORY_MAX,
    NOTES_MAX,
    Change,
    TriageError,
    TriageService,
    parse_version,
)
from socpipe.console.users import User


def service(role: Role = Role.CENTRAL_ANALYST) -> TriageService:
    return TriageService(alerts=Any, audit=Any, user=User("ana", role, None))  # type: ignore[arg-type]


def hit(**source: Any) -> AlertHit:
    base = {"alert.id": "a1", "alert.status": "new", "organization.id": "so-a"}
    return AlertHit("alerts", "a1", {**base, **source}, 7, 1)


def test_closing_needs_a_resolution_and_only_closing_takes_one() -> None:
    with pytest.raises(TriageError, match="needs a resolution"):
        Change(status="closed")
    with pytest.raises(TriageError, match="only when closing"):
        Change(status="in_progress", resolution="benign")
    with pytest.raises(TriageError, match="choose from"):
        Change(status="done")
    with pytest.raises(TriageError, match="choose from"):
        Change(status="closed", resolution="maybe")
    with pytest.raises(TriageError, match="not a user name"):
        Change(assignee="Robert'); drop")
    with pytest.raises(TriageError, match="empty"):
        Change(note="   ")
    assert Change().empty and not Change(note="x").empty


def test_a_change_is_flat_keys_with_history_and_audit_entries() -> None:
    planned = service().plan(hit(), Change(status="closed", resolution="benign", assignee="bo"))
    assert planned is not None
    document = planned.document
    assert {k for k in document if not k.startswith("alert.")} == set()
    assert document["alert.status"] == "closed"
    assert document["alert.resolution"] == "benign"
    assert document["alert.assignee"] == "bo"
    assert document["alert.updated_by"] == "ana"
    assert [(h["field"], h["from"], h["to"]) for h in document["alert.history"]] == [
        ("status", "new", "closed"),
        ("resolution", None, "benign"),
        ("assignee", None, "bo"),
    ]
    assert [(e.field, e.before, e.after, e.organization) for e in planned.entries] == [
        ("status", "new", "closed", "so-a"),
        ("resolution", None, "benign", "so-a"),
        ("assignee", None, "bo", "so-a"),
    ]


def test_reopening_clears_the_resolution_and_unassigning_clears_the_assignee() -> None:
    planned = service().plan(
        hit(**{"alert.status": "closed", "alert.resolution": "benign", "alert.assignee": "bo"}),
        Change(status="in_progress", assignee=""),
    )
    assert planned is not None
    assert planned.document["alert.resolution"] is None
    assert planned.document["alert.assignee"] is None


def test_nothing_to_change_writes_nothing() -> None:
    assert service().plan(hit(**{"alert.assignee": "bo"}), Change(assignee="bo")) is None
    assert service().plan(hit(), Change(status="new")) is None


def test_history_and_notes_stay_bounded() -> None:
    long_history = [
        {"at": "t", "by": "x", "field": "note", "to": str(i)} for i in range(HISTORY_MAX)
    ]
    many_notes = [{"at": "t", "by": "x", "text": str(i)} for i in range(NOTES_MAX)]
    planned = service().plan(
        hit(**{"alert.history": long_history, "alert.notes": many_notes}), Change(note="latest")
    )
    assert planned is not None
    assert len(planned.document["alert.history"]) == HISTORY_MAX
    assert planned.document["alert.history"][-1]["to"] == "latest"
    assert len(planned.document["alert.notes"]) == NOTES_MAX
    assert planned.document["alert.notes"][-1]["text"] == "latest"
    assert planned.document["alert.notes"][0]["text"] == "1"


def test_a_damaged_list_value_is_read_as_its_last_value() -> None:
    planned = service().plan(
        hit(**{"alert.status": ["false_positive", "new"]}), Change(status="acknowledged")
    )
    assert planned is not None
    assert planned.document["alert.history"][0]["from"] == "new"


def test_versions() -> None:
    assert parse_version("12:3") == (12, 3)
    assert parse_version("") is None
    for bad in ("12", "a:b", "1:2:3", "-1:2"):
        with pytest.raises(TriageError):
            parse_version(bad)
