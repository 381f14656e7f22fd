"""Everything the alert page (and ``GET /api/v1/alerts/<id>``) shows about one alert: the
evidence, a correlation's members resolved to their events and alerts, an anomaly's
explanation, forwarding per destination, and notes and history as one timeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from socpipe.console.elastic import field as field_of
from socpipe.console.health import DestinationHealth
from socpipe.console.scope import AlertHit, ScopedAlerts
from socpipe.core.config import Config
from socpipe.core.levels import SEVERITY
from socpipe.detectors.alert import ENTITY_FIELDS, alert_id
from socpipe.forwarding.ledger import DEADLETTERED, DELIVERED, REFUSED, SKIPPED

MAX_MEMBERS = 100
#: Fields whose values link to the entity page.
PIVOT_FIELDS = (*ENTITY_FIELDS, "user.effective.name")


@dataclass
class AlertView:
    hit: AlertHit
    entities: list[tuple[str, str]] = field(default_factory=list)
    raw_events: list[str] = field(default_factory=list)
    member_events: list[dict[str, Any]] = field(default_factory=list)
    member_alerts: list[dict[str, Any]] = field(default_factory=list)
    correlation: dict[str, Any] = field(default_factory=dict)
    anomaly: dict[str, Any] = field(default_factory=dict)
    indicator: dict[str, Any] = field(default_factory=dict)
    forwarding: list[dict[str, Any]] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)

    @property
    def source(self) -> dict[str, Any]:
        return self.hit.source

    def value(self, name: str) -> Any:
        return field_of(self.hit.source, name)

    def as_dict(self) -> dict[str, Any]:
        """The API's answer: the alert document with its version and the resolved parts."""
        return {
            "alert": self.hit.source,
            "version": self.hit.version,
            "member_events": self.member_events,
            "member_alerts": self.member_alerts,
            "forwarding": self.forwarding,
            "timeline": self.timeline,
        }


def _prefixed(source: dict[str, Any], prefix: str) -> dict[str, Any]:
    """Fields under a prefix, whether stored flat or nested, flat-keyed."""
    found = {name: value for name, value in source.items() if name.startswith(prefix)}
    nested = field_of(source, prefix.rstrip("."))
    if isinstance(nested, dict):
        found.update({f"{prefix}{name}": value for name, value in nested.items()})
    return found


async def build_view(
    alerts: ScopedAlerts,
    hit: AlertHit,
    config: Config,
    destinations: list[DestinationHealth] | None,
) -> AlertView:
    source = hit.source
    view = AlertView(hit)
    for name in PIVOT_FIELDS:
        value = field_of(source, name)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            view.entities.append((name, str(value)))
    for event in field_of(source, "events") or []:
        if isinstance(event, dict):
            original = field_of(event, "event.original")
            if original:
                view.raw_events.append(str(original))
    view.correlation = _prefixed(source, "correlation.")
    view.anomaly = _prefixed(source, "anomaly.")
    view.indicator = {**_prefixed(source, "threat.indicator."), **_prefixed(source, "indicator.")}
    if view.correlation:
        await _resolve_members(alerts, view)
    incident = field_of(source, "incident.id")
    records = await alerts.forwarding_records(str(incident)) if incident else []
    view.forwarding = forwarding_states(source, config, destinations, records)
    view.timeline = timeline(source)
    return view


async def _resolve_members(alerts: ScopedAlerts, view: AlertView) -> None:
    """A correlation lists the ids of the events it counted (or, for a correlation of
    correlations, of the alerts it counted): the events are looked up in the event indices,
    and the member alerts by the ids the rules would have given those events."""
    event_ids = [str(i) for i in view.correlation.get("correlation.event_ids") or []][:MAX_MEMBERS]
    rule_ids = [str(r) for r in view.correlation.get("correlation.rules") or []]
    member_ids = [str(i) for i in view.correlation.get("correlation.alert_ids") or []]
    if not event_ids:
        found = await alerts.get_many(sorted(member_ids[:MAX_MEMBERS]))
        view.member_alerts = [member.source for member in found.values()]
        return
    view.member_events = await alerts.search_events(
        [{"terms": {"event.id": event_ids}}],
        size=MAX_MEMBERS,
        sort=[{"@timestamp": {"order": "asc", "unmapped_type": "date"}}],
    )
    candidates = set(event_ids) | set(member_ids)
    for rule_id in rule_ids:
        candidates.update(alert_id(rule_id, {"event.id": ident}) for ident in event_ids)
    found = await alerts.get_many(sorted(candidates))
    view.member_alerts = sorted(
        (member.source for member in found.values() if member.id != view.hit.id),
        key=lambda source: str(field_of(source, "@timestamp") or ""),
    )


def forwarding_states(
    source: dict[str, Any],
    config: Config,
    destinations: list[DestinationHealth] | None,
    records: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Per destination, what the forwarding ledger says of the alert's incident (alerts are
    forwarded as incidents): its latest outcome there, or, with no record yet, whether the
    incident is below the destination's level or still waiting in its queue."""
    by_name = {d.name: d for d in destinations or []}
    level = SEVERITY.get(str(field_of(source, "rule.level")), 0)
    states = []
    for destination in config.forwarding.destinations:
        own = [r for r in records if r.get("forward.destination") == destination.name]
        health = by_name.get(destination.name)
        if own:
            state, detail = _ledger_state(own[-1])
        elif level < SEVERITY.get(destination.policy.min_level, 0):
            state = "not forwarded"
            detail = f"policy: the incident is below {destination.policy.min_level}"
        elif health is None or health.backlog is None:
            state, detail = "unknown", "no forwarding record, and the queue could not be read"
        elif health.backlog:
            state = "waiting"
            detail = f"{health.backlog} incident updates ahead in the destination's queue"
        else:
            state, detail = "not forwarded", "no forwarding record (not due at this level yet)"
        states.append(
            {
                "destination": destination.name,
                "type": destination.type,
                "state": state,
                "detail": detail,
            }
        )
    return states


def _ledger_state(record: dict[str, Any]) -> tuple[str, str]:
    outcome = str(record.get("forward.outcome"))
    when = f"at {record.get('@timestamp')}, incident level {record.get('incident.level')}"
    if outcome in DELIVERED:
        return outcome, f"{when}: {record.get('forward.receipt') or ''}".rstrip(": ")
    reason = record.get("forward.reason") or ""
    if outcome == SKIPPED:
        return "not forwarded", f"policy: {reason} ({when})"
    if outcome in (REFUSED, DEADLETTERED):
        return outcome, f"{reason} ({when})"
    return outcome, when


def timeline(source: dict[str, Any]) -> list[dict[str, Any]]:
    """History entries (notes among them), newest first."""
    entries = [e for e in field_of(source, "alert.history") or [] if isinstance(e, dict)]
    return sorted(entries, key=lambda entry: str(entry.get("at", "")), reverse=True)
