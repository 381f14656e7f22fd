"""The agency scope: the filter every query carries, lookups by id, and that no other module
queries the alerts or events indices."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from socpipe.console.roles import Role
from socpipe.console.scope import Scope, ScopeError
from socpipe.console.users import User

CONSOLE = Path(__file__).resolve().parents[2] / "console"


def user(role: Role, agency: str | None = None) -> User:
    return User(name="x", role=role, agency=agency)


def test_agency_roles_get_their_agency_filter() -> None:
    for role in (Role.AGENCY_ANALYST, Role.AGENCY_VIEWER):
        scope = Scope.of(user(role, "so-tttt"))
        assert scope.query([{"term": {"host.name": "a"}}]) == {
            "bool": {
                "filter": [
                    {"term": {"organization.id": "so-tttt"}},
                    {"term": {"host.name": "a"}},
                ]
            }
        }


def test_central_roles_see_every_agency() -> None:
    for role in (Role.CENTRAL_ANALYST, Role.CENTRAL_AUDITOR):
        assert Scope.of(user(role)).query() == {"bool": {"filter": []}}


def test_a_query_cannot_widen_the_scope() -> None:
    """The user's clause (even an "or" naming every agency) is one more required clause."""
    scope = Scope.of(user(Role.AGENCY_VIEWER, "so-tttt"))
    widening = {"bool": {"should": [{"match_all": {}}, {"term": {"organization.id": "so-yte"}}]}}
    query = scope.query([widening])
    assert query["bool"]["filter"][0] == {"term": {"organization.id": "so-tttt"}}
    assert set(query["bool"]) == {"filter"}


def test_documents_of_other_agencies_and_of_several_are_out_of_scope() -> None:
    scope = Scope.of(user(Role.AGENCY_ANALYST, "so-tttt"))
    assert scope.allows({"organization.id": "so-tttt"})
    assert scope.allows({"organization": {"id": "so-tttt"}})
    assert not scope.allows({"organization.id": "so-yte"})
    assert not scope.allows({"organization.id": "multiple", "correlation.agencies": ["so-tttt"]})
    assert not scope.allows({})
    assert Scope.of(user(Role.CENTRAL_ANALYST)).allows({"organization.id": "multiple"})


def test_roles_without_alerts_get_no_scope() -> None:
    with pytest.raises(ScopeError):
        Scope.of(user(Role.ADMIN))
    with pytest.raises(ScopeError):
        Scope.of(user(Role.AGENCY_ANALYST, None))


def test_only_the_scope_module_queries_alerts_and_events() -> None:
    """Index names of alerts and events appear in scope.py only (and where `alerts load`
    writes, and where settings names them): a page or service querying them directly would
    bypass the agency filter."""
    allowed = {
        "scope.py": None,
        "settings.py": None,
        "cli.py": {"result = await load_alerts(client, settings.indices.alerts, path)"},
    }
    pattern = re.compile(r".*(indices\.alerts|events_prefix|alerts_index|events_pattern).*")
    offending = []
    checked = sorted(CONSOLE.rglob("*.py"))
    assert any(path.parent.name == "pages" for path in checked)
    for path in checked:
        name = str(path.relative_to(CONSOLE))
        if name in allowed and allowed[name] is None:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.match(line) and line.strip() not in (allowed.get(name) or set()):
                offending.append(f"{name}:{number}: {line.strip()}")
    assert offending == []
