"""Indicators from the national center (STIX 2.1), matched against every event.

Indicators arrive as STIX ``indicator`` objects whose patterns compare one observable with a
value: ``[ipv4-addr:value = '203.0.113.5']``, ``[ipv4-addr:value ISSUBSET '198.51.100.0/24']``,
``[domain-name:value = 'evil.example']``, ``[url:value = 'http://…']``,
``[file:hashes.'SHA-256' = '…']``, and ORs of those. Patterns that need more (AND,
FOLLOWEDBY, other observables) are counted as unsupported and skipped.

Lookups cost the same however many indicators are loaded: exact values sit in dictionaries;
networks sit in one dictionary per prefix length, so an address is checked with at most one
lookup per distinct prefix length; a domain is checked with its parents (``a.b.example``,
``b.example``), one lookup per label.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from socpipe.core.errors import SocpipeError
from socpipe.core.event import Event
from socpipe.detectors.alert import Alert
from socpipe.detectors.correlation import event_time

log = logging.getLogger(__name__)

#: Event fields checked per kind of indicator.
EVENT_FIELDS = {
    "ip": ("source.ip", "destination.ip", "client.ip", "server.ip", "host.ip"),
    "domain": (
        "url.domain",
        "dns.question.name",
        "destination.domain",
        "source.domain",
        "server.domain",
    ),
    "url": ("url.original", "url.full"),
    "hash": (
        "file.hash.md5",
        "file.hash.sha1",
        "file.hash.sha256",
        "process.hash.md5",
        "process.hash.sha1",
        "process.hash.sha256",
    ),
}
_COMPARISON = re.compile(
    r"(?P<object>[a-z0-9-]+):(?P<path>[A-Za-z0-9_.'-]+)\s*(?P<op>=|ISSUBSET)\s*"
    r"'(?P<value>(?:[^'\\]|\\.)*)'"
)
_CONNECTIVES = re.compile(r"\s+(AND|FOLLOWEDBY|WITHIN|REPEATS|START|STOP|NOT|LIKE|MATCHES)\s+")


@dataclass(frozen=True)
class Indicator:
    id: str
    name: str
    pattern: str
    source: str
    valid_from: float | None = None
    valid_until: float | None = None
    confidence: int | None = None

    def valid_at(self, moment: float) -> bool:
        if self.valid_from is not None and moment < self.valid_from:
            return False
        return self.valid_until is None or moment < self.valid_until


@dataclass(frozen=True)
class Hit:
    indicator: Indicator
    field: str
    value: str


def _timestamp(text: Any) -> float | None:
    if not text:
        return None
    return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()


def comparisons(pattern: str) -> list[tuple[str, str]] | None:
    """(kind, value) pairs a pattern ORs together; None when the pattern needs more."""
    if _CONNECTIVES.search(pattern):
        return None
    found = []
    for match in _COMPARISON.finditer(pattern):
        kind = _kind(match["object"], match["path"], match["op"])
        if kind is None:
            return None
        value = match["value"].replace("\\'", "'").replace("\\\\", "\\")
        found.append((kind, value))
    return found or None


def _kind(stix_object: str, path: str, operator: str) -> str | None:
    if stix_object in ("ipv4-addr", "ipv6-addr") and path == "value":
        return "cidr" if operator == "ISSUBSET" else "ip"
    if operator != "=":
        return None
    if stix_object == "domain-name" and path == "value":
        return "domain"
    if stix_object == "url" and path == "value":
        return "url"
    if stix_object == "file" and path.startswith("hashes."):
        return "hash"
    return None


@dataclass
class IndicatorStore:
    """Indicators by value, ready for constant-time lookups."""

    exact: dict[str, dict[str, list[Indicator]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list))
    )
    #: (ip version, prefix length) -> network address as int -> indicators
    networks: dict[tuple[int, int], dict[int, list[Indicator]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list))
    )
    loaded: int = 0
    unsupported: int = 0
    revoked: int = 0

    def add_stix(self, document: dict[str, Any], source: str) -> None:
        """Add one STIX object (anything but an indicator is ignored)."""
        if document.get("type") != "indicator" or document.get("pattern_type", "stix") != "stix":
            return
        if document.get("revoked"):
            self.revoked += 1
            return
        pattern = str(document.get("pattern", ""))
        pairs = comparisons(pattern)
        if pairs is None:
            self.unsupported += 1
            log.info("indicator %s skipped: unsupported pattern %s", document.get("id"), pattern)
            return
        indicator = Indicator(
            id=str(document["id"]),
            name=str(document.get("name") or pattern),
            pattern=pattern,
            source=source,
            valid_from=_timestamp(document.get("valid_from")),
            valid_until=_timestamp(document.get("valid_until")),
            confidence=document.get("confidence"),
        )
        for kind, value in pairs:
            self._index(kind, value, indicator)
        self.loaded += 1

    def _index(self, kind: str, value: str, indicator: Indicator) -> None:
        if kind == "cidr":
            network = ipaddress.ip_network(value, strict=False)
            key = (network.version, network.prefixlen)
            self.networks[key][int(network.network_address)].append(indicator)
        elif kind == "ip":
            self.exact["ip"][str(ipaddress.ip_address(value))].append(indicator)
        elif kind == "domain":
            self.exact["domain"][value.lower().rstrip(".")].append(indicator)
        elif kind == "hash":
            self.exact["hash"][value.lower()].append(indicator)
        else:
            self.exact[kind][value].append(indicator)

    def lookup(self, event: Event) -> list[Hit]:
        hits: list[Hit] = []
        for kind, names in EVENT_FIELDS.items():
            for name in names:
                value = event.get(name)
                if value in (None, ""):
                    continue
                for indicator in self._candidates(kind, str(value)):
                    hits.append(Hit(indicator, name, str(value)))
        return hits

    def _candidates(self, kind: str, value: str) -> Iterable[Indicator]:
        if kind == "ip":
            yield from self.exact["ip"].get(value, ())
            yield from self._networks_of(value)
        elif kind == "domain":
            labels = value.lower().rstrip(".").split(".")
            for start in range(len(labels) - 1):
                yield from self.exact["domain"].get(".".join(labels[start:]), ())
        elif kind == "hash":
            yield from self.exact["hash"].get(value.lower(), ())
        else:
            yield from self.exact[kind].get(value, ())

    def _networks_of(self, value: str) -> Iterable[Indicator]:
        if not self.networks:
            return
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            return
        bits = 32 if address.version == 4 else 128
        number = int(address)
        for (version, prefix), networks in self.networks.items():
            if version == address.version:
                masked = number >> (bits - prefix) << (bits - prefix) if prefix else 0
                yield from networks.get(masked, ())


def load_bundle_files(paths: Iterable[Path]) -> IndicatorStore:
    """The indicators of STIX bundles kept on disk, in one store."""
    store = IndicatorStore()
    for path in paths:
        load_bundle_file(path, store)
    return store


def load_bundle_file(path: Path, store: IndicatorStore) -> None:
    """Add the indicators of a STIX bundle (or a TAXII envelope) kept on disk."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise SocpipeError(f"not a readable STIX bundle: {error}", str(path)) from None
    objects = document.get("objects") if isinstance(document, dict) else None
    if not isinstance(objects, list):
        raise SocpipeError("no 'objects' list (expected a STIX bundle)", str(path))
    for item in objects:
        if isinstance(item, dict):
            store.add_stix(item, f"file:{path.name}")


@dataclass(frozen=True)
class IndicatorRule:
    """Indicator matches in the role of a rule (one id for all: metrics stay bounded)."""

    id: str = "socpipe-indicator-match"
    title: str = "Event Matches A National Center Indicator"
    level: str = "high"
    source: str = "indicators"
    ruleset: str = "indicators"
    description: str = "An address, domain, URL or file hash in the event is a shared indicator."
    tags: tuple[str, ...] = ("attack.command_and_control",)
    author: str = "socpipe"
    references: tuple[str, ...] = ()


class IndicatorMatcher:
    """Checks every event against the current indicators; the store can be swapped while
    running (a feed poller builds a new one and assigns it)."""

    def __init__(self, store: IndicatorStore, rule: IndicatorRule | None = None) -> None:
        self.store = store
        self.rule = rule or IndicatorRule()

    def observe(self, event: Event) -> list[Alert]:
        hits = self.store.lookup(event)
        if not hits:
            return []
        moment = event_time(event)
        alerts = []
        for hit in hits:
            if moment is not None and not hit.indicator.valid_at(moment):
                continue
            alerts.append(self._alert(event, hit))
        return alerts

    def flush(self) -> list[Alert]:
        return []

    def _alert(self, event: Event, hit: Hit) -> Alert:
        base = Alert.from_match(self.rule, event)
        anchor = f"{hit.indicator.id}\x1f{base.id}\x1f{hit.field}"
        details = {
            "threat.indicator.name": hit.indicator.name,
            "threat.indicator.provider": hit.indicator.source,
            "threat.indicator.confidence": hit.indicator.confidence,
            "indicator.id": hit.indicator.id,
            "indicator.pattern": hit.indicator.pattern,
            "indicator.matched_field": hit.field,
            "indicator.matched_value": hit.value,
        }
        return Alert(
            id=hashlib.blake2b(anchor.encode(), digest_size=16).hexdigest(),
            rule=self.rule,
            timestamp=base.timestamp,
            agency=base.agency,
            entities=base.entities,
            events=base.events,
            first_seen=base.first_seen,
            last_seen=base.last_seen,
            details=details,
        )
