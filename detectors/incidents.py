"""Incidents: the alerts that belong together, as one document that grows.

An analyst (and the national center) should hear of a brute force once, not once per failed
login. The tracker puts each alert into an incident, by two rules (docs/correlation.md,
"Incidents", says the same for analysts):

* **Repeats.** Every alert has a *key*: its agency, its rule, its entity and a time window.
  The entity is the host plus the first of ``source.ip`` and ``user.name`` the alert names
  (a correlation alert: its group-by values); the window is the tumbling window of
  ``window_secs`` (aligned to the epoch) holding the alert's ``alert.first_seen``. Alerts of
  one key belong to one incident, whose id is derived from the key: the same alerts give the
  same incident id in every process, after every restart and on every replay.
* **Evidence.** A correlation alert joins the incident holding what it counted: the alerts
  raised on its member events and its member alerts. An alert raised on an event that a
  correlation already counted joins that correlation's incident (the alerts of one event are
  taken correlations first, so the login that completes "brute force, then success" joins the
  brute force's incident rather than opening one of its own). When the evidence lies in
  several incidents, the alert joins the most severe (then the oldest, then the smallest id)
  and the others are named in ``incident.related_ids``; incidents are never merged, so an id
  once published never disappears. Evidence never crosses agencies (a campaign against several
  agencies is its own incident, naming the agencies' incidents as related), and never reaches
  an incident whose window ended more than one window before the alert.

So every alert of an incident lies within two windows (plus the lateness) of its start, which
bounds what the daemon must re-read to rebuild the tracker after a restart
(:attr:`IncidentTracker.horizon_secs`). Memory is bounded: incidents leave memory once no
alert can join them any more, at most ``max_incidents`` are held and at most ``max_bytes`` of
estimated state (the least recently changed is closed early beyond either, counted: alerts
crafted to open many large incidents, 100 listed members and 20 values per field each, would
otherwise reach gigabytes within the count). The evidence links (key, event or alert id ->
incident) leave with their incident (they only ever lead to open incidents) and count in its
bytes; besides, at most ``max_links`` of each kind are held.

The tracker is pure logic: the detect stage publishes :meth:`IncidentTracker.updates` to
Kafka, ``socpipe scan`` writes :meth:`IncidentTracker.closed` incidents to a file.
"""

from __future__ import annotations

import hashlib
import heapq
import logging
import sys
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from socpipe.core.event import format_timestamp
from socpipe.core.levels import SEVERITY
from socpipe.detectors.alert import Alert, RuleInfo

log = logging.getLogger(__name__)

DEFAULT_WINDOW_SECS = 1800.0
DEFAULT_LATENESS_SECS = 300.0
DEFAULT_MAX_INCIDENTS = 50_000
DEFAULT_MAX_LINKS = 500_000
DEFAULT_MAX_BYTES = 256 << 20
#: Estimated bytes of an open incident before anything is listed (its object, dictionaries,
#: sets, lists and id, and its place in the tracker), of each listed alert besides its id and
#: time, each listed rule, and each listed value or related id besides the value itself:
#: tracemalloc's figures on CPython 3.11, which tests/test_state_memory.py holds them to.
INCIDENT_BYTES: Final = 2_000
LISTED_ALERT_BYTES: Final = 72
LISTED_RULE_BYTES: Final = 160
LISTED_VALUE_BYTES: Final = 16
#: A tag, technique or tactic added to one of an incident's sets (the string is the rule's).
SET_MEMBER_BYTES: Final = 40
#: An evidence link besides its id: its place in the tracker's map and in the incident's list.
LINK_BYTES: Final = 80
#: Member alerts an incident lists (with rule, level and time); its counts are always exact.
MAX_LISTED_ALERTS: Final = 100
#: Distinct values an incident lists per entity field, rules and related incidents it lists.
MAX_LISTED_VALUES: Final = 20
MAX_LISTED_RULES: Final = 100
EVICTION_WARNING_SECS = 60.0
#: Expiry entries of incidents closed early beyond which the expiry heap is rebuilt from the
#: open incidents alone (a flood that opens and evicts incidents faster than their reach
#: passes would otherwise pile up an entry per incident ever opened within the last hour).
STALE_EXPIRY_SLACK: Final = 1024

#: The fields besides the host that name who an alert is about, most telling first.
ACTOR_FIELDS: Final = ("source.ip", "user.name")
#: Entity fields an incident gathers from its alerts (values listed per field).
INCIDENT_ENTITY_FIELDS: Final = (
    "host.name",
    "source.ip",
    "destination.ip",
    "user.name",
    "user.target.name",
    "url.domain",
    "dns.question.name",
    "process.executable",
    "file.path",
)


@dataclass
class IncidentStats:
    """Counters the daemon exports as metrics and the scan summary prints."""

    opened: int = 0
    alerts: int = 0
    evicted: int = 0


def _epoch(text: str) -> float:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def _iso(seconds: float) -> str:
    return format_timestamp(datetime.fromtimestamp(seconds, UTC))


def incident_id(agency: str, key: tuple[str, ...], window_start: float) -> str:
    """The id of the incident a key opens in a window: a function of the key alone."""
    text = "\x1f".join(("incident", agency, *key, f"{window_start:.0f}"))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def alert_key(alert: Alert) -> tuple[str, ...]:
    """What makes alerts repeats of one another (besides agency and window)."""
    group = alert.details.get("correlation.group")
    if isinstance(group, dict):
        return (alert.rule.id, *(f"{name}={group[name]}" for name in sorted(group)))
    entities = alert.entities
    key = [alert.rule.id, f"host.name={entities.get('host.name', '')}"]
    for name in ACTOR_FIELDS:
        if (value := entities.get(name)) not in (None, ""):
            key.append(f"{name}={value}")
            break
    return tuple(key)


class Incident:
    """One incident's state: what its document says, and what the tracker needs to grow it."""

    def __init__(
        self,
        identifier: str,
        agency: str,
        window_start: float,
        opened_by: str,
        source: tuple[str, str],
    ) -> None:
        self.id = identifier
        self.agency = agency
        #: The agency and host of the alert that opened it, whose event time closes it.
        self.source = source
        self.window_start = window_start
        self.opened_by = opened_by
        self.first = float("inf")
        self.last = float("-inf")
        self.first_seen = ""
        self.last_seen = ""
        self.severity = 0
        self.level = "informational"
        self.primary: dict[str, Any] = {}
        self.alert_count = 0
        #: (alert id, rule, first seen) of the first members: a tuple holds a fraction of what
        #: a dictionary of the document's five keys would, and the rule is shared.
        self.listed: list[tuple[str, RuleInfo, str]] = []
        self.rules: dict[str, list[Any]] = {}
        self.entities: dict[str, list[Any]] = {}
        self.tags: set[str] = set()
        self.techniques: set[str] = set()
        self.tactics: set[str] = set()
        self.related: list[str] = []
        self.published_level: str | None = None
        self.changed = False
        #: The ids linked to this incident in the tracker's maps, unlinked when it closes.
        self.linked: list[str] = []
        #: Estimated bytes held, grown as members are listed; the tracker caps their sum.
        self.size = INCIDENT_BYTES

    def add(self, alert: Alert) -> None:
        rule = alert.rule
        labels_before = len(self.tags) + len(self.techniques) + len(self.tactics)
        self.alert_count += 1
        self.changed = True
        first, last = _epoch(alert.first_seen), _epoch(alert.last_seen)
        if first < self.first:
            self.first, self.first_seen = first, alert.first_seen
        if last > self.last:
            self.last, self.last_seen = last, alert.last_seen
        severity = SEVERITY.get(rule.level, 3)
        if severity > self.severity:
            self.severity, self.level = severity, rule.level
            self.primary = {
                "rule.id": rule.id,
                "rule.name": rule.title,
                "rule.level": rule.level,
                "rule.description": rule.description,
            }
        if len(self.listed) < MAX_LISTED_ALERTS:
            self.listed.append((alert.id, rule, alert.first_seen))
            self.size += (
                LISTED_ALERT_BYTES + sys.getsizeof(alert.id) + sys.getsizeof(alert.first_seen)
            )
        if (counted := self.rules.get(rule.id)) is not None:
            counted[2] += 1
        elif len(self.rules) < MAX_LISTED_RULES:
            self.rules[rule.id] = [rule.title, rule.level, 1]
            self.size += LISTED_RULE_BYTES
        for name in INCIDENT_ENTITY_FIELDS:
            value = alert.entities.get(name)
            if value in (None, ""):
                continue
            values = self.entities.setdefault(name, [])
            if value not in values and len(values) < MAX_LISTED_VALUES:
                values.append(value)
                self.size += LISTED_VALUE_BYTES + sys.getsizeof(value)
        self.tags.update(rule.tags)
        self.techniques.update(alert.techniques)
        self.tactics.update(alert.tactics)
        labels = len(self.tags) + len(self.techniques) + len(self.tactics)
        self.size += SET_MEMBER_BYTES * (labels - labels_before)

    def link(self, key: str) -> None:
        self.linked.append(key)
        self.size += LINK_BYTES + sys.getsizeof(key)

    def relate(self, other: str) -> None:
        if other != self.id and other not in self.related and len(self.related) < MAX_LISTED_RULES:
            self.related.append(other)
            self.size += LISTED_VALUE_BYTES + sys.getsizeof(other)
            self.changed = True

    def to_dict(self) -> dict[str, Any]:
        """The pipeline's part of the incident document (flat ECS-style keys, like alerts).

        Analysts' fields (``incident.status``, assignee, notes) are not here: the index stage
        adds ``incident.status: new`` when it creates the document and never touches them.
        """
        document: dict[str, Any] = {
            "@timestamp": self.first_seen,
            "incident.id": self.id,
            "incident.title": self.primary.get("rule.name", ""),
            "incident.level": self.level,
            "event.severity": self.severity,
            "incident.first_seen": self.first_seen,
            "incident.last_seen": self.last_seen,
            "incident.window_start": _iso(self.window_start),
            "incident.opened_by": self.opened_by,
            "incident.alert_count": self.alert_count,
            "incident.alert_ids": [alert_id for alert_id, _, _ in self.listed],
            "incident.alerts": [
                {
                    "alert.id": alert_id,
                    "rule.id": rule.id,
                    "rule.name": rule.title,
                    "rule.level": rule.level,
                    "alert.first_seen": first_seen,
                }
                for alert_id, rule, first_seen in self.listed
            ],
            "incident.rule_ids": list(self.rules),
            "incident.rules": [
                {"rule.id": rule_id, "rule.name": name, "rule.level": level, "alerts": count}
                for rule_id, (name, level, count) in self.rules.items()
            ],
            "incident.related_ids": list(self.related),
            "organization.id": self.agency,
            "tags": sorted(self.tags),
            "threat.framework": "MITRE ATT&CK",
            "threat.technique.id": sorted(self.techniques),
            "threat.tactic.name": sorted(self.tactics),
            **self.primary,
        }
        for name, values in self.entities.items():
            document[name] = list(values)
        return document


class _Links:
    """Key, event or alert id -> incident id, oldest dropped beyond a cap."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._map: OrderedDict[str, str] = OrderedDict()

    def get(self, key: str) -> str | None:
        return self._map.get(key)

    def add(self, key: str, incident: str) -> bool:
        """Link ``key`` unless it is linked already (the first incident to claim an event
        keeps it); whether it was linked now."""
        if key and key not in self._map:
            return self.set(key, incident)
        return False

    def set(self, key: str, incident: str) -> bool:
        """Link ``key`` to ``incident``; whether that is new (not linked so before)."""
        new = self._map.get(key) != incident
        self._map[key] = incident
        self._map.move_to_end(key)
        if len(self._map) > self.cap:
            self._map.popitem(last=False)
        return new

    def unlink(self, key: str, incident: str) -> None:
        """Drop the link of ``key`` if it still leads to ``incident``."""
        if self._map.get(key) == incident:
            del self._map[key]

    def clear(self) -> None:
        self._map.clear()

    def __len__(self) -> int:
        return len(self._map)


def _source(alert: Alert) -> tuple[str, str]:
    return (alert.agency, str(alert.entities.get("host.name", "")))


def _member_ids(alert: Alert, field_name: str) -> list[str]:
    value = alert.details.get(field_name)
    return [str(item) for item in value] if isinstance(value, list) else []


def _event_ids(alert: Alert) -> list[str]:
    """The events an alert stands on: a rule's matched event, a correlation's members."""
    if "correlation.event_ids" in alert.details:
        return _member_ids(alert, "correlation.event_ids")
    return [str(event["event.id"]) for event in alert.events if event.get("event.id")]


class IncidentTracker:
    """Assigns alerts to incidents and says which incidents changed."""

    def __init__(
        self,
        window_secs: float = DEFAULT_WINDOW_SECS,
        lateness_secs: float = DEFAULT_LATENESS_SECS,
        max_incidents: int = DEFAULT_MAX_INCIDENTS,
        max_links: int = DEFAULT_MAX_LINKS,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        if window_secs <= 0:
            raise ValueError("the incident window must be positive")
        self.window = window_secs
        self.lateness = lateness_secs
        self.max_incidents = max_incidents
        self.max_bytes = max_bytes
        #: Estimated bytes of the open incidents (their ``size``).
        self._bytes = 0
        self.stats = IncidentStats()
        #: Open incidents, least recently changed first.
        self._open: OrderedDict[str, Incident] = OrderedDict()
        #: (time after which no alert can join, incident id), soonest first.
        self._expiry: list[tuple[float, str]] = []
        self._closed: list[Incident] = []
        #: Where each key's alerts go (key id -> incident id): its own incident, or the one
        #: its first alert joined on evidence.
        self._keys = _Links(max_links)
        self._events = _Links(max_links)
        self._alerts = _Links(max_links)
        self._newest = float("-inf")
        #: Newest alert time per agency and host: a source whose clock or delivery lags the
        #: others closes its incidents on its own time, not on theirs.
        self._source_newest: OrderedDict[tuple[str, str], float] = OrderedDict()
        self.max_sources = max_links
        #: Incidents past their reach overall, waiting for their own source's time to pass it.
        self._lagging: dict[tuple[str, str], list[tuple[float, str]]] = {}
        self._warned_at = float("-inf")

    @property
    def horizon_secs(self) -> float:
        """How far back alerts shape open incidents: what a restarted detect stage re-reads."""
        return 2 * self.window + 2 * self.lateness

    @property
    def open_count(self) -> int:
        return len(self._open)

    @property
    def state_bytes(self) -> int:
        return self._bytes

    @property
    def link_count(self) -> int:
        return len(self._keys) + len(self._events) + len(self._alerts)

    def assign(self, alerts: Sequence[Alert]) -> list[str]:
        """The incident id of each alert (in their order); ``alerts`` are those of one event,
        or of one call of the detector. Correlation alerts are placed first."""
        if not alerts:
            return []
        order = sorted(
            range(len(alerts)), key=lambda i: "correlation.type" not in alerts[i].details
        )
        assigned: dict[int, str] = {}
        for position in order:
            assigned[position] = self._place(alerts[position])
        self._expire()
        return [assigned[position] for position in range(len(alerts))]

    def updates(self) -> list[dict[str, Any]]:
        """The documents of the incidents changed since the last call, each with
        ``incident.previous_level``: its level in the previous update (None for its first),
        which lets a forward policy act when an incident opens or grows more severe.

        For a stream (the detect stage); a caller uses this or :meth:`closed`, not both:
        closed incidents are forgotten here once their last change is taken."""
        changed = [
            incident for incident in (*self._closed, *self._open.values()) if incident.changed
        ]
        self._closed = []
        documents = []
        for incident in changed:
            document = incident.to_dict()
            document["incident.previous_level"] = incident.published_level
            incident.published_level = incident.level
            incident.changed = False
            documents.append(document)
        return documents

    def retract(self, updates: list[dict[str, Any]]) -> None:
        """Updates taken by :meth:`updates` could not be published: give them again next
        time, with the previous level they had."""
        held = {incident.id: incident for incident in self._open.values()}
        for document in updates:
            incident = held.get(str(document["incident.id"]))
            if incident is None:
                continue  # closed since; its document stays as last published
            incident.changed = True
            incident.published_level = document["incident.previous_level"]

    def pending_ids(self) -> set[str]:
        """Incidents changed since the last :meth:`updates`."""
        return {
            incident.id for incident in (*self._closed, *self._open.values()) if incident.changed
        }

    def mark_published(self, keep: set[str]) -> None:
        """After re-reading history (a restarted detect stage): what it changed was published
        when it was first handled. Changes in ``keep`` (pending before the re-read) were not."""
        for incident in (*self._closed, *self._open.values()):
            if incident.changed and incident.id not in keep:
                incident.changed = False
                incident.published_level = incident.level
        self._closed = [incident for incident in self._closed if incident.changed]

    def closed(self) -> list[dict[str, Any]]:
        """The final documents of incidents no alert can join any more, each given once (for
        a scan, which writes each incident once, at its end)."""
        gone, self._closed = self._closed, []
        return [incident.to_dict() for incident in gone]

    def flush(self) -> list[dict[str, Any]]:
        """End of input (a scan): close every incident; their final documents."""
        self._closed.extend(self._open.values())
        self._open.clear()
        self._bytes = 0
        for links in (self._keys, self._events, self._alerts):
            links.clear()
        self._expiry.clear()
        return self.closed()

    def _place(self, alert: Alert) -> str:
        if (placed := self._alerts.get(alert.id)) is not None:
            return placed  # the same alert again (a batch retried after a failure)
        self.stats.alerts += 1
        last = _epoch(alert.last_seen)
        self._newest = max(self._newest, last)
        source = _source(alert)
        self._source_newest[source] = max(self._source_newest.get(source, last), last)
        self._source_newest.move_to_end(source)
        if len(self._source_newest) > self.max_sources:
            self._source_newest.popitem(last=False)
        candidates = self._evidence(alert, last)
        window_start = (_epoch(alert.first_seen) // self.window) * self.window
        own_id = incident_id(alert.agency, alert_key(alert), window_start)
        # Repeats first: the key's incident, wherever its first alert went.
        target = self._joinable(self._keys.get(own_id) or own_id, alert.agency, last)
        if target is None and candidates:
            target = min(candidates, key=lambda found: (-found.severity, found.first, found.id))
        if target is None:
            target = self._open_incident(own_id, alert.agency, window_start, alert.rule.id, source)
        size_before = target.size
        if self._keys.set(own_id, target.id):
            target.link(own_id)
        target.add(alert)
        self._open.move_to_end(target.id)
        for other in self._related(alert, last):
            target.relate(other)
        for found in candidates:
            target.relate(found.id)
        for event_id in _event_ids(alert):
            if self._events.add(event_id, target.id):
                target.link(event_id)
        if self._alerts.add(alert.id, target.id):
            target.link(alert.id)
        self._bytes += target.size - size_before
        while self._bytes > self.max_bytes and len(self._open) > 1:
            self._evict(
                f"its cap of {self.max_bytes:,} estimated bytes", "stages.incident_max_bytes"
            )
        return target.id

    def _joinable(self, identifier: str | None, agency: str, moment: float) -> Incident | None:
        incident = self._open.get(identifier) if identifier else None
        if incident is None or incident.agency != agency:
            return None
        if moment >= incident.window_start + 2 * self.window + self.lateness:
            return None
        return incident

    def _linked_ids(self, alert: Alert) -> list[str]:
        linked = [
            self._alerts.get(member) for member in _member_ids(alert, "correlation.alert_ids")
        ]
        linked.extend(self._events.get(event_id) for event_id in _event_ids(alert))
        return list(dict.fromkeys(found for found in linked if found))

    def _evidence(self, alert: Alert, moment: float) -> list[Incident]:
        """Open incidents of the same agency holding what the alert stands on."""
        found = (self._joinable(i, alert.agency, moment) for i in self._linked_ids(alert))
        return [incident for incident in found if incident is not None]

    def _related(self, alert: Alert, moment: float) -> list[str]:
        """Incidents the alert's evidence lies in that it cannot join (other agencies)."""
        return [
            identifier
            for identifier in self._linked_ids(alert)
            if identifier in self._open and self._joinable(identifier, alert.agency, moment) is None
        ]

    def _open_incident(
        self,
        identifier: str,
        agency: str,
        window_start: float,
        opened_by: str,
        source: tuple[str, str],
    ) -> Incident:
        incident = Incident(identifier, agency, window_start, opened_by, source)
        self._open[identifier] = incident
        self._bytes += incident.size
        heapq.heappush(self._expiry, (self._reach(incident), identifier))
        if len(self._expiry) > 2 * len(self._open) + STALE_EXPIRY_SLACK:
            self._rebuild_expiry()
        self.stats.opened += 1
        while len(self._open) > self.max_incidents:
            self._evict(
                f"its cap of {self.max_incidents:,} open incidents", "stages.incident_max_open"
            )
        return incident

    def _evict(self, cap: str, setting: str) -> None:
        """Drop the least recently changed incident (its document stays as published)."""
        _, evicted = self._open.popitem(last=False)
        self._close(evicted)
        self.stats.evicted += 1
        now = time.monotonic()
        if now - self._warned_at >= EVICTION_WARNING_SECS:
            log.warning(
                "incident state reached %s: closing the least recently changed early"
                " (%d so far; latest %s). Raise %s.",
                cap,
                self.stats.evicted,
                evicted.id,
                setting,
            )
            self._warned_at = now

    def _rebuild_expiry(self) -> None:
        """The heap of the open incidents not yet past their reach (those waiting in
        ``_lagging`` were taken off it already)."""
        lagging = {identifier for waiting in self._lagging.values() for _, identifier in waiting}
        self._expiry = [
            (self._reach(incident), identifier)
            for identifier, incident in self._open.items()
            if identifier not in lagging
        ]
        heapq.heapify(self._expiry)

    def _reach(self, incident: Incident) -> float:
        """The event time after which no alert can join the incident."""
        return incident.window_start + 2 * self.window + self.lateness

    def _expire(self) -> None:
        """Close incidents no alert can join any more: the event time of their own source is
        past their reach (sources are judged apart, as correlation groups are for lateness:
        a host whose events arrive hours late keeps its incidents until its time moves on)."""
        watermark = self._newest - self.lateness
        while self._expiry and self._expiry[0][0] <= watermark:
            reach, identifier = heapq.heappop(self._expiry)
            incident = self._open.get(identifier)
            if incident is not None:
                self._lagging.setdefault(incident.source, []).append((reach, identifier))
        for source in [source for source in self._lagging if source in self._source_newest]:
            own = self._source_newest[source] - self.lateness
            waiting = [
                (reach, identifier)
                for reach, identifier in self._lagging.pop(source)
                if not self._close_if_past(identifier, reach, own)
            ]
            if waiting:
                self._lagging[source] = waiting

    def _close_if_past(self, identifier: str, reach: float, watermark: float) -> bool:
        """Close the incident if ``watermark`` passed its reach; True when it is gone."""
        if reach > watermark:
            return identifier not in self._open
        incident = self._open.pop(identifier, None)
        if incident is not None:
            self._close(incident)
        return True

    def _close(self, incident: Incident) -> None:
        """An incident left ``_open``: its links go (no alert can join it any more) and its
        last state waits for :meth:`updates` or :meth:`closed`."""
        for key in incident.linked:
            for links in (self._keys, self._events, self._alerts):
                links.unlink(key, incident.id)
        incident.linked = []
        self._bytes -= incident.size
        self._closed.append(incident)
