"""Roles: who may do what, and which roles are bound to one agency."""

from __future__ import annotations

import pytest

from socpipe.console.roles import Permission, Role, parse_role
from socpipe.console.users import UserError, check_user


def test_each_role_can_do_what_the_issue_says() -> None:
    expected = {
        Role.ADMIN: {
            Permission.MANAGE_USERS,
            Permission.READ_HEALTH,
            Permission.RESUBMIT,
            Permission.READ_AUDIT,
        },
        Role.CENTRAL_ANALYST: {
            Permission.READ_ALERTS,
            Permission.TRIAGE,
            Permission.READ_SUPPRESSIONS,
            Permission.SUPPRESS,
            Permission.READ_HEALTH,
            Permission.RESUBMIT,
        },
        Role.CENTRAL_AUDITOR: {
            Permission.READ_ALERTS,
            Permission.READ_SUPPRESSIONS,
            Permission.READ_HEALTH,
            Permission.READ_AUDIT,
        },
        Role.AGENCY_ANALYST: {Permission.READ_ALERTS, Permission.TRIAGE},
        Role.AGENCY_VIEWER: {Permission.READ_ALERTS},
    }
    for role, allowed in expected.items():
        assert {p for p in Permission if role.can(p)} == allowed, role


def test_only_agency_roles_are_bound_to_an_agency() -> None:
    assert {role for role in Role if role.agency_bound} == {Role.AGENCY_ANALYST, Role.AGENCY_VIEWER}
    check_user("ana", Role.AGENCY_ANALYST, "so-tttt")
    check_user("central", Role.CENTRAL_ANALYST, None)
    with pytest.raises(UserError, match="needs --agency"):
        check_user("ana", Role.AGENCY_VIEWER, None)
    with pytest.raises(UserError, match="give no --agency"):
        check_user("central", Role.CENTRAL_AUDITOR, "so-tttt")


@pytest.mark.parametrize("name", ["", "Ana", "a b", "-x", "a" * 65, "ana/../x", "é"])
def test_user_names_are_plain(name: str) -> None:
    with pytest.raises(UserError):
        check_user(name, Role.CENTRAL_ANALYST, None)


def test_parse_role_names_the_choices() -> None:
    assert parse_role("agency-viewer") is Role.AGENCY_VIEWER
    with pytest.raises(ValueError, match="roles: admin, central-analyst"):
        parse_role("root")
