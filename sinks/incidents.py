"""How an incident update is merged into the stored incident document.

Incidents grow, and the detect stage publishes each one's whole state as it changes; replays
and retries publish old states again, and two processes may publish shares of one incident
(docs/correlation.md, "Incidents"). So an update is never written as it is: it is merged into
what is stored, field by field, in a way that only ever moves forward:

* first seen (and ``@timestamp``) take the earliest value, last seen the latest;
* the level, and what follows it (title, leading rule), change only to a more severe level;
* the alert count, and the lists that follow it (the listed member alerts, the rules with
  their counts), change only to a larger count;
* every other list (alert ids, rule ids, related incidents, tags, ATT&CK ids, entity values)
  is the union of both, in order, capped at :data:`LIST_CAP` values;
* any other field keeps the value it was created with.

Merging an update twice, or an older update after a newer one, therefore changes nothing.
The analysts' fields (``incident.status`` and the rest of triage) are not in updates: they
are set once, when the incident is created (:data:`TRIAGE_DEFAULTS`), and the pipeline
writes only the fields it changes, so triage is never overwritten.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

EARLIEST: Final = ("@timestamp", "incident.first_seen")
LATEST: Final = ("incident.last_seen",)
BY_LEVEL: Final = (
    "incident.level",
    "event.severity",
    "incident.title",
    "rule.id",
    "rule.name",
    "rule.level",
    "rule.description",
)
BY_COUNT: Final = ("incident.alert_count", "incident.alerts", "incident.rules")
LIST_CAP: Final = 100
#: The analysts' fields, with the values a new incident starts with.
TRIAGE_DEFAULTS: Final[dict[str, Any]] = {"incident.status": "new"}
#: Not stored: the level of the detect stage's previous update, for forward policies.
TRANSIENT: Final = ("incident.previous_level",)
#: The fields every update must carry.
REQUIRED: Final = ("incident.id", "event.severity", "incident.alert_count")


def pipeline_fields(update: dict[str, Any]) -> dict[str, Any]:
    """The update without what is not stored (and without any analysts' field)."""
    missing = [name for name in REQUIRED if name not in update]
    if missing:
        raise KeyError(", ".join(missing))
    return {
        name: value
        for name, value in update.items()
        if name not in TRANSIENT and name not in TRIAGE_DEFAULTS
    }


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _union(stored: Any, update: list[Any]) -> list[Any]:
    merged = list(stored) if isinstance(stored, list) else ([] if stored is None else [stored])
    for item in update:
        if len(merged) >= LIST_CAP:
            break
        if item not in merged:
            merged.append(item)
    return merged


def changes(stored: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """The fields to write so that ``stored`` holds ``update`` merged in (module docstring);
    empty when the update brings nothing new."""
    changed: dict[str, Any] = {}
    for name in EARLIEST:
        value = update.get(name)
        if value is not None and (stored.get(name) is None or str(value) < str(stored[name])):
            changed[name] = value
    for name in LATEST:
        value = update.get(name)
        if value is not None and (stored.get(name) is None or str(value) > str(stored[name])):
            changed[name] = value
    if _number(update.get("event.severity")) > _number(stored.get("event.severity")):
        changed.update({name: update[name] for name in BY_LEVEL if name in update})
    if _number(update.get("incident.alert_count")) > _number(stored.get("incident.alert_count")):
        changed.update({name: update[name] for name in BY_COUNT if name in update})
    for name, value in update.items():
        if isinstance(value, list) and name not in BY_COUNT:
            merged = _union(stored.get(name), value)
            if merged != stored.get(name):
                changed[name] = merged
    return changed


def fold(updates: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Several updates of a batch as one per incident (merging is order-free), keyed by id."""
    folded: dict[str, dict[str, Any]] = {}
    for update in updates:
        fields = pipeline_fields(update)
        identifier = str(fields["incident.id"])
        held = folded.get(identifier)
        folded[identifier] = fields if held is None else {**held, **changes(held, fields)}
    return folded
