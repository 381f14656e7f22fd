"""The alert: what a detection hands to analysts, Elasticsearch and the national center."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from collectors.event import Event
from detectors.rules import CompiledRule

#: ECS event.severity per Sigma level, so alerts sort the same way in every tool.
SEVERITY = {"informational": 1, "low": 2, "medium": 3, "high": 4, "critical": 5}
#: Fields copied from the matched event to the alert, naming who and what is involved.
ENTITY_FIELDS = (
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
ATTACK_TACTICS = frozenset(
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
    anchor = event.get("event.id") or event.get("event.original", "")
    return hashlib.blake2b(f"{rule_id}\x1f{anchor}".encode(), digest_size=16).hexdigest()


@dataclass(frozen=True)
class Alert:
    id: str
    rule: CompiledRule
    timestamp: str
    agency: str
    entities: dict[str, Any]
    events: tuple[Event, ...]
    status: str = "new"

    @classmethod
    def from_match(cls, rule: CompiledRule, event: Event) -> Alert:
        entities = {name: event[name] for name in ENTITY_FIELDS if name in event}
        return cls(
            id=alert_id(rule.id, event),
            rule=rule,
            timestamp=event["@timestamp"],
            agency=event.get("organization.id", "unknown"),
            entities=entities,
            events=(event,),
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
            "alert.first_seen": self.events[0]["@timestamp"],
            "alert.last_seen": self.events[-1]["@timestamp"],
            "rule.id": self.rule.id,
            "rule.name": self.rule.title,
            "rule.level": self.rule.level,
            "rule.description": self.rule.description,
            "rule.author": self.rule.author,
            "rule.reference": list(self.rule.references),
            "rule.ruleset": self.rule.source,
            "tags": list(self.rule.tags),
            "threat.framework": "MITRE ATT&CK",
            "threat.technique.id": self.techniques,
            "threat.tactic.name": self.tactics,
            "organization.id": self.agency,
            "events": list(self.events),
        }
        document.update(self.entities)
        return document
