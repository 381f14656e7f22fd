"""Per-destination policy: which incidents go and when, what leaves the province, how fast.

Incidents are forwarded, never single alerts. An incident is due at a destination when it
reaches the destination's ``min_level`` (it opens at that level or above, or rises to it) and
again each time its level rises above what was forwarded; growing at the same level sends
nothing. The detect stage says, in every incident update, the level of the update before
(``incident.previous_level``), so the decision needs no state and a replay decides the same.

Selection and minimisation are applied before anything is sent; minimisation works on a copy,
so the incident stored in the province (Kafka, Elasticsearch) keeps every field.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any

from socpipe.core.config import ForwardPolicyConfig, MinimiseConfig
from socpipe.core.errors import ConfigError
from socpipe.core.levels import LEVELS, SEVERITY

IncidentDocument = dict[str, Any]


def _listed(document: IncidentDocument, name: str) -> set[str]:
    value = document.get(name)
    if value is None:
        return set()
    return {str(item) for item in value} if isinstance(value, list) else {str(value)}


class Selection:
    """Decides whether an incident update goes to a destination; says why not, for the
    ledger."""

    def __init__(self, policy: ForwardPolicyConfig) -> None:
        if policy.min_level not in LEVELS:
            raise ConfigError(f"min_level must be one of {', '.join(LEVELS)}")
        self.policy = policy
        self.min_severity = SEVERITY[policy.min_level]

    def due(self, incident: IncidentDocument) -> bool:
        """Whether this update is a moment to forward: the incident reached ``min_level``, or
        its level rose (module docstring). Not being due is not a refusal: nothing changed
        for this destination."""
        level = SEVERITY.get(str(incident.get("incident.level")), 0)
        if level < self.min_severity:
            return False
        previous = incident.get("incident.previous_level")
        return previous is None or level > SEVERITY.get(str(previous), 0)

    def refusal(self, incident: IncidentDocument) -> str | None:
        """None when a due incident goes; otherwise the reason it does not. Rules and tags
        are the incident's: an included one among them lets it through, and it is excluded
        only when all of them are (one noisy member does not hide an incident)."""
        policy = self.policy
        if SEVERITY.get(str(incident.get("incident.level")), 0) < self.min_severity:
            return f"level below {policy.min_level}"
        rules = _listed(incident, "incident.rule_ids") or _listed(incident, "rule.id")
        if policy.include_rules and not rules & set(policy.include_rules):
            return "no included rule"
        if rules and rules <= set(policy.exclude_rules):
            return "every rule excluded"
        tags = _listed(incident, "tags")
        if policy.include_tags and not tags & set(policy.include_tags):
            return "no included tag"
        if tags and tags <= set(policy.exclude_tags):
            return "every tag excluded"
        agency = str(incident.get("organization.id"))
        if policy.include_agencies and agency not in policy.include_agencies:
            return "agency not included"
        if agency in policy.exclude_agencies:
            return "agency excluded"
        return None


class Minimiser:
    """Drops or hashes named fields in the document and in the events it carries.

    Hashes are keyed (HMAC-SHA256 with the province's key), so the national center can see
    that two incidents name the same user without learning the name, and nobody without the
    key can confirm a guess.
    """

    def __init__(self, settings: MinimiseConfig, hash_key: bytes | None) -> None:
        if settings.hash_fields and not hash_key:
            raise ConfigError(
                "hash_fields needs a key: set forwarding.hash_key_env to a variable holding it"
            )
        self.settings = settings
        self.hash_key = hash_key or b""

    def apply(self, incident: IncidentDocument) -> IncidentDocument:
        document = copy.deepcopy(incident)
        self._clean(document)
        for event in document.get("events") or ():
            if isinstance(event, dict):
                self._clean(event)
        return document

    def _clean(self, document: dict[str, Any]) -> None:
        settings = self.settings
        for name in settings.drop_fields:
            document.pop(name, None)
        if not settings.keep_original:
            document.pop("event.original", None)
            document.pop("message", None)
        for name in settings.hash_fields:
            if name in document and document[name] is not None:
                document[name] = self.pseudonym(document[name])

    def pseudonym(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.pseudonym(item) for item in value]
        digest = hmac.new(self.hash_key, str(value).encode(), hashlib.sha256).hexdigest()
        return f"hmac-sha256:{digest[:32]}"


class RateLimiter:
    """Paces sending to at most ``per_minute`` incidents (a token bucket with a one-second
    burst).

    Over the rate, ``wait`` sleeps: incidents queue up in Kafka (the lag metric shows it)
    rather than being dropped.
    """

    def __init__(
        self,
        per_minute: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Any] = time.sleep,
    ) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(self.rate, 1.0)
        self.tokens = self.capacity
        self.clock, self.sleep = clock, sleep
        self.updated = clock()

    def wait(self) -> None:
        if self.rate <= 0:
            return
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1:
            self.sleep((1 - self.tokens) / self.rate)
            self.updated = self.clock()
            self.tokens = 1
        self.tokens -= 1
