"""Triage: status, resolution, assignee and notes, changed without ever losing a change.

Every change is a flat partial update (``{"alert.status": "closed", ...}``: a nested
``{"alert": {...}}`` document merged beside the pipeline's dotted keys would leave a field
holding two values) guarded by the ``if_seq_no``/``if_primary_term`` of what the analyst saw.
Someone else's change in between gives ``Conflict`` ("changed by X at T") instead of a silent
overwrite; the pipeline writes alerts with ``create`` only, so a replay never overwrites
triage. Each changed field is also appended to the audit index (who, when, what, from, to)
and to the alert's own ``alert.history`` (the latest ``HISTORY_MAX`` entries, for its page).
The web pages, the JSON API and `socpipe alerts set` all come here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from elasticsearch import ConflictError

from socpipe.console.audit import AuditEntry, AuditLog
from socpipe.console.elastic import field as field_of
from socpipe.console.elastic import iso, now
from socpipe.console.roles import Permission
from socpipe.console.scope import AlertHit, ScopedAlerts
from socpipe.console.users import User

STATUSES = ("new", "acknowledged", "in_progress", "closed")
OPEN_STATUSES = STATUSES[:-1]
RESOLUTIONS = ("true_positive", "false_positive", "benign")
HISTORY_MAX = 100
NOTES_MAX = 200
NOTE_MAX_CHARS = 10_000
ASSIGNEE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
#: Alerts one bulk action on a whole filter changes at most.
BULK_MAX = 10_000
_VERSION = re.compile(r"([0-9]{1,19}):([0-9]{1,19})")


class TriageError(ValueError):
    """A change that is not allowed (bad value, missing resolution, no permission)."""


class NotFound(LookupError):
    """No such alert within the user's scope (another agency's alert is "not found" too)."""


class Conflict(RuntimeError):
    """The alert changed since the analyst read it."""

    def __init__(self, alert_id: str, by: str, at: str) -> None:
        super().__init__(
            f"alert {alert_id} was changed by {by or 'someone'} at {at or 'an unknown time'}:"
            " reload it and apply your change again"
        )
        self.alert_id, self.by, self.at = alert_id, by, at


@dataclass(frozen=True)
class Change:
    """What an analyst asks for; ``None`` leaves a field as it is, ``assignee=""`` unassigns."""

    status: str | None = None
    resolution: str | None = None
    assignee: str | None = None
    note: str | None = None

    def __post_init__(self) -> None:
        if self.status is not None and self.status not in STATUSES:
            raise TriageError(f"status {self.status!r:.40}: choose from {', '.join(STATUSES)}")
        if self.resolution is not None and self.resolution not in RESOLUTIONS:
            raise TriageError(
                f"resolution {self.resolution!r:.40}: choose from {', '.join(RESOLUTIONS)}"
            )
        if self.status == "closed" and self.resolution is None:
            raise TriageError("closing an alert needs a resolution")
        if self.resolution is not None and self.status != "closed":
            raise TriageError("a resolution is given only when closing (status closed)")
        if self.assignee and not ASSIGNEE.fullmatch(self.assignee):
            raise TriageError(f"assignee {self.assignee!r:.80} is not a user name")
        if self.note is not None:
            if not self.note.strip():
                raise TriageError("a note cannot be empty")
            if len(self.note) > NOTE_MAX_CHARS:
                raise TriageError(f"a note may have at most {NOTE_MAX_CHARS} characters")

    @property
    def empty(self) -> bool:
        return self.status is None and self.assignee is None and self.note is None


def parse_version(text: str | None) -> tuple[int, int] | None:
    """``"seq_no:primary_term"`` as the pages carry it, or None when not given."""
    if not text:
        return None
    match = _VERSION.fullmatch(text)
    if not match:
        raise TriageError(f"version {text!r:.40} is not SEQ:TERM")
    return int(match.group(1)), int(match.group(2))


@dataclass
class Planned:
    """One alert's update: the partial document and the audit entries it makes."""

    hit: AlertHit
    document: dict[str, Any]
    entries: list[AuditEntry]


@dataclass
class BulkResult:
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{len(self.changed)} changed"]
        if self.unchanged:
            parts.append(f"{len(self.unchanged)} already so")
        if self.conflicts:
            parts.append(f"{len(self.conflicts)} changed by someone else meanwhile (not applied)")
        if self.not_found:
            parts.append(f"{len(self.not_found)} not found")
        return ", ".join(parts)


class TriageService:
    def __init__(
        self, alerts: ScopedAlerts, audit: AuditLog, user: User, address: str = ""
    ) -> None:
        self.alerts = alerts
        self.audit = audit
        self.user = user
        self.address = address

    def _check_allowed(self) -> None:
        if not self.user.role.can(Permission.TRIAGE):
            raise TriageError(f"role {self.user.role} cannot change alerts")

    async def get(self, alert_id: str) -> AlertHit:
        hit = await self.alerts.get(alert_id)
        if hit is None:
            raise NotFound(alert_id)
        return hit

    async def apply(self, alert_id: str, change: Change, version: str | None = None) -> AlertHit:
        """Apply ``change`` to one alert. ``version`` is what the analyst saw (pages send it);
        without it, the alert is read now and the guard covers the read-to-write gap."""
        self._check_allowed()
        hit = await self.get(alert_id)
        expected = parse_version(version)
        if expected is not None and expected != (hit.seq_no, hit.primary_term):
            raise _conflict(hit)
        planned = self.plan(hit, change)
        if planned is None:
            return hit
        try:
            updated = await self.alerts.update(hit, planned.document)
        except ConflictError:
            raise _conflict(await self.get(alert_id)) from None
        await self.audit.record(*planned.entries)
        return updated

    async def apply_many(
        self, targets: Sequence[tuple[str, str | None]], change: Change
    ) -> BulkResult:
        """Apply ``change`` to several alerts: (id, version seen or None) each. Out-of-scope
        and unknown ids are reported as not found; each alert is guarded on its own."""
        self._check_allowed()
        result = BulkResult()
        hits = await self.alerts.get_many([ident for ident, _ in targets])
        plans: list[Planned] = []
        for ident, version in targets:
            hit = hits.get(ident)
            if hit is None:
                result.not_found.append(ident)
                continue
            expected = parse_version(version)
            if expected is not None and expected != (hit.seq_no, hit.primary_term):
                result.conflicts.append(_conflict(hit))
                continue
            planned = self.plan(hit, change)
            if planned is None:
                result.unchanged.append(ident)
            else:
                plans.append(planned)
        await self._write(plans, result)
        return result

    async def apply_to_filter(
        self, clauses: Sequence[dict[str, Any]], change: Change, limit: int = BULK_MAX
    ) -> BulkResult:
        """Apply ``change`` to every alert matching the clauses (within scope), at most
        ``limit``; each at the version the search returned."""
        self._check_allowed()
        result = BulkResult()
        plans: list[Planned] = []
        async for hit in self.alerts.iterate(clauses, limit):
            planned = self.plan(hit, change)
            if planned is None:
                result.unchanged.append(hit.id)
            else:
                plans.append(planned)
        await self._write(plans, result)
        return result

    async def _write(self, plans: list[Planned], result: BulkResult) -> None:
        statuses = await self.alerts.update_many([(p.hit, p.document) for p in plans])
        entries: list[AuditEntry] = []
        conflicted = []
        for planned in plans:
            status = statuses.get(planned.hit.id, 0)
            if status == 200:
                result.changed.append(planned.hit.id)
                entries.extend(planned.entries)
            elif status == 409:
                conflicted.append(planned.hit.id)
            else:
                result.not_found.append(planned.hit.id)
        if conflicted:
            current = await self.alerts.get_many(conflicted)
            for ident in conflicted:
                hit = current.get(ident)
                if hit is None:
                    result.not_found.append(ident)
                else:
                    result.conflicts.append(_conflict(hit))
        if entries:
            await self.audit.record(*entries)

    def plan(self, hit: AlertHit, change: Change) -> Planned | None:
        """The flat partial document and audit entries for ``change``, or None if it changes
        nothing."""
        source = hit.source
        moment = iso(now())
        organization = field_of(source, "organization.id")
        wanted: dict[str, Any] = {}
        if change.status is not None:
            wanted["alert.status"] = change.status
            wanted["alert.resolution"] = change.resolution
        if change.assignee is not None:
            wanted["alert.assignee"] = change.assignee or None
        document: dict[str, Any] = {}
        history = list(_as_list(field_of(source, "alert.history")))
        entries = []
        for name, value in wanted.items():
            before = _single(field_of(source, name))
            if before == value:
                continue
            document[name] = value
            short = name.removeprefix("alert.")
            history.append(
                {"at": moment, "by": self.user.name, "field": short, "from": before, "to": value}
            )
            entries.append(self._entry(hit.id, short, before, value, organization))
        if change.note is not None:
            note = {"at": moment, "by": self.user.name, "text": change.note}
            notes = [*_as_list(field_of(source, "alert.notes")), note][-NOTES_MAX:]
            document["alert.notes"] = notes
            history.append(
                {
                    "at": moment,
                    "by": self.user.name,
                    "field": "note",
                    "from": None,
                    "to": change.note,
                }
            )
            entries.append(self._entry(hit.id, "note", None, change.note, organization))
        if not document:
            return None
        document["alert.history"] = history[-HISTORY_MAX:]
        document["alert.updated"] = moment
        document["alert.updated_by"] = self.user.name
        return Planned(hit, document, entries)

    def _entry(
        self, alert_id: str, name: str, before: Any, after: Any, organization: Any
    ) -> AuditEntry:
        return AuditEntry(
            actor=self.user.name,
            role=self.user.role.value,
            action="alert.update" if name != "note" else "alert.note",
            target=alert_id,
            field=name,
            before=before,
            after=after,
            organization=str(organization) if organization is not None else None,
            address=self.address,
        )


def _conflict(hit: AlertHit) -> Conflict:
    source = hit.source
    return Conflict(
        hit.id,
        str(field_of(source, "alert.updated_by") or ""),
        str(field_of(source, "alert.updated") or ""),
    )


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _single(value: Any) -> Any:
    """One value of a field (a document damaged by a nested update may hold a list)."""
    if isinstance(value, list):
        return value[-1] if value else None
    return value
