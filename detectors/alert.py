"""The alert: what a detection hands to analysts, Elasticsearch and the national center."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from socpipe.core.event import Event
from socpipe.core.levels import SEVERITY

#: Fields copied from the matched event to the alert, naming who and what is involved.
ENTITY_FIELDS: Final[tuple[str, ...]] = (
    "host.name",
    "source.ip",
    "source.domain",
    "destination.ip",
    "destination.port",
    "user.name",
    "user.target.name",
    "url.original",
    "url.domain",
    "process.executable",
    "process.command_line",
    "file.path",
    "dns.question.name",
    "registry.path",
)
#: ATT&CK enterprise tactics as Sigma tags name them (attack.<tactic>).
ATTACK_TACTICS: Final = frozenset(
    {
        "reconnaissance",
        "resource_development",
        "initial_access",
        "execution",
        "persistence",
        "privilege_escalation",
        "defense_evasion",
        "stealth",
        "credential_access",
        "discovery",
        "lateral_movement",
        "collection",
        "command_and_control",
        "exfiltration",
        "impact",
    }
)


def alert_id(rule_id: str, event: Event) -> str:
    """Same rule and same event give the same id, so re-scanning or replaying never duplicates."""
    return anchored_alert_id(rule_id, str(event.get("event.id") or event.get("event.original", "")))


def anchored_alert_id(rule_id: str, anchor: str) -> str:
    """The id of ``rule_id``'s alert on the event with id ``anchor``: a correlation names the
    alerts of the rule matches it counted without having built them."""
    return hashlib.blake2b(f"{rule_id}\x1f{anchor}".encode(), digest_size=16).hexdigest()


class RuleInfo(Protocol):
    """What an alert needs to know of whatever raised it: a Sigma rule, a correlation rule or
    an anomaly model."""

    @property
    def id(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def level(self) -> str: ...
    @property
    def tags(self) -> tuple[str, ...]: ...
    @property
    def source(self) -> str: ...
    @property
    def ruleset(self) -> str:
        """Where the rule comes from, the same on every installation (``rules/linux/x.yml``);
        ``source`` is the full path, for messages."""
        ...

    @property
    def description(self) -> str: ...
    @property
    def author(self) -> str: ...
    @property
    def references(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class Alert:
    id: str
    rule: RuleInfo
    timestamp: str
    agency: str
    entities: dict[str, Any]
    events: tuple[Event, ...]
    first_seen: str
    last_seen: str
    #: Detector-specific fields of the alert document (correlation.*, anomaly.*).
    details: dict[str, Any] = field(default_factory=dict)
    status: str = "new"

    @classmethod
    def from_match(cls, rule: RuleInfo, event: Event) -> Alert:
        entities = {name: event[name] for name in ENTITY_FIELDS if name in event}
        # str(): events from other producers may carry numbers here, and this module is
        # compiled, where a str field refuses anything else.
        timestamp = str(event["@timestamp"])
        return cls(
            id=alert_id(rule.id, event),
            rule=rule,
            timestamp=timestamp,
            agency=str(event.get("organization.id", "unknown")),
            entities=entities,
            events=(event,),
            first_seen=timestamp,
            last_seen=timestamp,
        )

    @property
    def techniques(self) -> list[str]:
        return sorted(
            tag.split(".", 1)[1].upper()
            for tag in self.rule.tags
            if tag.startswith("attack.t") and tag[8:9].isdigit()
        )

    @property
    def tactics(self) -> list[str]:
        return sorted(
            tag.split(".", 1)[1]
            for tag in self.rule.tags
            if tag.split(".", 1)[-1] in ATTACK_TACTICS
        )

    def to_dict(self) -> dict[str, Any]:
        """The alert document (flat ECS keys, like events), as written to JSON Lines and indices."""
        document: dict[str, Any] = {
            "@timestamp": self.timestamp,
            "event.kind": "alert",
            "event.severity": SEVERITY.get(self.rule.level, 3),
            "alert.id": self.id,
            "alert.status": self.status,
            "alert.first_seen": self.first_seen,
            "alert.last_seen": self.last_seen,
            "rule.id": self.rule.id,
            "rule.name": self.rule.title,
            "rule.level": self.rule.level,
            "rule.description": self.rule.description,
            "rule.author": self.rule.author,
            "rule.reference": list(self.rule.references),
            "rule.ruleset": self.rule.ruleset,
            "tags": list(self.rule.tags),
            "threat.framework": "MITRE ATT&CK",
            "threat.technique.id": self.techniques,
            "threat.tactic.name": self.tactics,
            "organization.id": self.agency,
            "events": list(self.events),
        }
        document.update(self.entities)
        document.update(self.details)
        return document
