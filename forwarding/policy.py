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
import re
import time
from collections.abc import Callable
from typing import Any, Final

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


#: Alert keys whose values are values of the event field another key names: (the key naming
#: the field, the key holding its values). A hashed field's values there are hashed too.
NAMED_VALUES: Final = (
    ("correlation.field", "correlation.values"),
    ("indicator.matched_field", "indicator.matched_value"),
)
#: Keys socpipe writes about the alert itself (ids, rule, levels, times, counts): no event
#: content is in them, and a clear value that happens to equal one of them (a user named
#: "high") must not deface them. Every other string is searched for hashed values.
OWN_KEYS: Final = frozenset(
    {
        "@timestamp",
        "tags",
        "event.id",
        "event.kind",
        "event.severity",
        "event.module",
        "event.dataset",
        "organization.id",
        "organization.name",
        "correlation.type",
        "correlation.condition",
        "correlation.rules",
        "correlation.event_ids",
        "correlation.agencies",
        "correlation.field",
        "correlation.aliases",
        "anomaly.model",
        "anomaly.entity_field",
        "indicator.id",
        "indicator.matched_field",
    }
)
OWN_PREFIXES: Final = ("rule.", "alert.", "threat.", "incident.")
#: Clear values shorter than this are replaced where they are a whole value, not inside text
#: (a one-letter user name would otherwise deface every sentence).
MIN_SEARCHED_CHARS: Final = 3
PSEUDONYM_PREFIX: Final = "hmac-sha256:"


class Minimiser:
    """Drops or hashes named fields wherever they occur in the document (an incident, or an
    alert), and hashes their values wherever else those values appear.

    Hashes are keyed (HMAC-SHA256 with the province's key), so the national center can see
    that two incidents name the same user without learning the name, and nobody without the
    key can confirm a guess.

    A value leaves through more than its own field: an incident's entity lists, the events
    and alerts a document carries, a correlation's group (``correlation.group``) and counted
    values (``correlation.values``, named by ``correlation.field``), an alias standing for the
    field (``correlation.aliases``), an indicator's matched value, and free text (a command
    line, a URL, an anomaly's template steps). So minimisation has two passes over a copy: the
    first removes dropped fields and hashes the hashed ones at every depth, noting each clear
    value; the second replaces every remaining occurrence of a noted value in any string that
    is not socpipe's own metadata (``OWN_KEYS``, ``OWN_PREFIXES``): whole values always, and
    as a word inside text when at least ``MIN_SEARCHED_CHARS`` long.
    """

    def __init__(self, settings: MinimiseConfig, hash_key: bytes | None) -> None:
        if settings.hash_fields and not hash_key:
            raise ConfigError(
                "hash_fields needs a key: set forwarding.hash_key_env to a variable holding it"
            )
        self.settings = settings
        self.hash_key = hash_key or b""

    def apply(self, document: IncidentDocument) -> IncidentDocument:
        copied = copy.deepcopy(document)
        hashed = set(self.settings.hash_fields) | _aliases_of(
            document.get("correlation.aliases"), self.settings.hash_fields
        )
        pseudonyms = _Pseudonyms(self.pseudonym)
        self._clean(copied, hashed, pseudonyms)
        if pseudonyms.clear:
            pseudonyms.replace_in(copied)
        return copied

    def _clean(self, node: Any, hashed: set[str], pseudonyms: _Pseudonyms) -> None:
        """Drop and hash by key in every mapping under ``node``."""
        if isinstance(node, list):
            for item in node:
                self._clean(item, hashed, pseudonyms)
            return
        if not isinstance(node, dict):
            return
        settings = self.settings
        for name in settings.drop_fields:
            node.pop(name, None)
        if not settings.keep_original:
            node.pop("event.original", None)
            node.pop("message", None)
        for name_key, values_key in NAMED_VALUES:
            field_name = node.get(name_key)
            # Without the field's name (an alert from an older socpipe), assume the worst.
            if values_key in node and hashed and (field_name is None or field_name in hashed):
                node[values_key] = pseudonyms.hash(node[values_key])
        for key, value in node.items():
            if key in hashed:
                if value is not None:
                    node[key] = pseudonyms.hash(value)
            elif not _own(key):
                self._clean(value, hashed, pseudonyms)

    def pseudonym(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.pseudonym(item) for item in value]
        digest = hmac.new(self.hash_key, str(value).encode(), hashlib.sha256).hexdigest()
        return f"{PSEUDONYM_PREFIX}{digest[:32]}"


def _aliases_of(aliases: Any, hash_fields: list[str]) -> set[str]:
    """Names that stand for a hashed field in a correlation alert (``user=user.name``)."""
    names = set()
    for alias in aliases if isinstance(aliases, list) else ():
        name, _, source = str(alias).partition("=")
        if source in hash_fields:
            names.add(name)
    return names


def _own(key: str) -> bool:
    return key in OWN_KEYS or key.startswith(OWN_PREFIXES)


class _Pseudonyms:
    """One alert's hashing: the clear values met, and replacing them wherever else they are."""

    def __init__(self, pseudonym: Callable[[Any], Any]) -> None:
        self.pseudonym = pseudonym
        self.clear: dict[str, str] = {}
        self.made: set[str] = set()

    def hash(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.hash(item) for item in value]
        if isinstance(value, dict):
            return {key: self.hash(item) for key, item in value.items()}
        if isinstance(value, str) and value in self.made:
            return value  # a value reached twice (a hashed field also named elsewhere)
        pseudonym: str = self.pseudonym(value)
        self.made.add(pseudonym)
        if value is not None and str(value):
            self.clear[str(value)] = pseudonym
        return pseudonym

    def replace_in(self, document: dict[str, Any]) -> None:
        searched = sorted(
            (value for value in self.clear if len(value) >= MIN_SEARCHED_CHARS), key=len
        )
        # Longest first, so "admin2" is not cut as "admin" + "2"; whole words only.
        words = "|".join(re.escape(value) for value in reversed(searched))
        self._pattern = re.compile(rf"(?<!\w)(?:{words})(?!\w)") if searched else None
        self._replace(document)

    def _replace(self, node: Any) -> Any:
        if isinstance(node, dict):
            for key, value in node.items():
                if not _own(key):
                    node[key] = self._replace(value)
            return node
        if isinstance(node, list):
            node[:] = [self._replace(item) for item in node]
            return node
        if not isinstance(node, str) or node in self.made:
            return node
        if node in self.clear:
            return self.clear[node]
        if self._pattern is None:
            return node
        return self._pattern.sub(lambda match: self.clear[match.group(0)], node)


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
