"""Roles and what each may do.

Two axes: what a role may do (permissions) and which agencies' alerts it sees. Central roles
see every agency, including correlation alerts that span several; agency roles see their own
agency only (console/scope.py enforces that). The admin manages users and operations but does
not read alerts: keeping the two apart means a leaked admin account does not expose incidents.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    CENTRAL_ANALYST = "central-analyst"
    CENTRAL_AUDITOR = "central-auditor"
    AGENCY_ANALYST = "agency-analyst"
    AGENCY_VIEWER = "agency-viewer"

    @property
    def agency_bound(self) -> bool:
        """Whether users of this role belong to one agency (and see only its alerts)."""
        return self in (Role.AGENCY_ANALYST, Role.AGENCY_VIEWER)

    def can(self, permission: Permission) -> bool:
        return permission in PERMISSIONS[self]


class Permission(StrEnum):
    READ_ALERTS = "read-alerts"
    TRIAGE = "triage"
    READ_SUPPRESSIONS = "read-suppressions"
    SUPPRESS = "suppress"
    READ_HEALTH = "read-health"
    RESUBMIT = "resubmit-deadletters"
    READ_AUDIT = "read-audit"
    MANAGE_USERS = "manage-users"


PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(
        {
            Permission.MANAGE_USERS,
            Permission.READ_HEALTH,
            Permission.RESUBMIT,
            Permission.READ_AUDIT,
        }
    ),
    Role.CENTRAL_ANALYST: frozenset(
        {
            Permission.READ_ALERTS,
            Permission.TRIAGE,
            Permission.READ_SUPPRESSIONS,
            Permission.SUPPRESS,
            Permission.READ_HEALTH,
            Permission.RESUBMIT,
        }
    ),
    Role.CENTRAL_AUDITOR: frozenset(
        {
            Permission.READ_ALERTS,
            Permission.READ_SUPPRESSIONS,
            Permission.READ_HEALTH,
            Permission.READ_AUDIT,
        }
    ),
    Role.AGENCY_ANALYST: frozenset({Permission.READ_ALERTS, Permission.TRIAGE}),
    Role.AGENCY_VIEWER: frozenset({Permission.READ_ALERTS}),
}


def parse_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        choices = ", ".join(role.value for role in Role)
        raise ValueError(f"unknown role {value!r}; roles: {choices}") from None
