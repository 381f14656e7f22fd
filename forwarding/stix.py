"""An incident as a STIX 2.1 bundle, for the national center's TAXII collection.

What the bundle holds:

* ``identity`` of the province (the producer, ``created_by_ref`` of everything) and of the
  agency where the incident was seen;
* the observed entities as cyber-observables (IP addresses, domains, URLs, user accounts,
  file hashes) inside one ``observed-data``;
* an ``attack-pattern`` for the incident's leading rule (the one that set its level),
  carrying the incident's ATT&CK techniques as ``mitre-attack`` external references and its
  tactics as kill-chain phases;
* a ``sighting`` of that attack pattern: where and when it was seen, how many alerts, the
  incident's level, id, title and rules;
* an ``indicator`` for the main network observable (source address, domain or URL), when
  there is one, so the center can match it elsewhere.

Every id is derived from stable inputs (the incident id, the rule id, the province, the
agency) with UUIDv5, and every timestamp from the incident, so sending the same update twice
produces byte-identical objects: the receiver recognises a re-send as the same object. An
incident forwarded again because its level rose keeps its ids; its objects' ``modified`` is
its last-seen time plus one millisecond per level rank, so each level is a newer version of
the same objects (never the same version with other content).
"""

from __future__ import annotations

import ipaddress
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import stix2

from socpipe.core.levels import SEVERITY

#: Namespace for socpipe's deterministic STIX ids.
NAMESPACE = uuid.UUID("6f1f3c52-2f4b-5b2e-9c61-5c0c5e1f7a01")
#: STIX sighting confidence and indicator confidence from the Sigma level.
CONFIDENCE = {"informational": 15, "low": 30, "medium": 50, "high": 75, "critical": 90}
#: created/modified of the objects many alerts share (identities, a rule's attack pattern):
#: one fixed version, so they never look like new versions of themselves.
SHARED_VERSION = datetime(2026, 1, 1, tzinfo=UTC)


def stix_id(kind: str, *parts: str) -> str:
    return f"{kind}--{uuid.uuid5(NAMESPACE, chr(31).join((kind, *parts)))}"


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _address(value: Any) -> stix2.IPv4Address | stix2.IPv6Address | None:
    try:
        parsed = ipaddress.ip_address(str(value))
    except ValueError:
        return None
    kind = stix2.IPv4Address if parsed.version == 4 else stix2.IPv6Address
    return kind(value=str(parsed))


def values(document: dict[str, Any], name: str) -> list[Any]:
    """A field's values: incidents list them, a lone value is a list of one."""
    value = document.get(name)
    if value is None or value == "":
        return []
    return (
        [item for item in value if item not in (None, "")] if isinstance(value, list) else [value]
    )


def observables(incident: dict[str, Any]) -> list[Any]:
    """The entities of an incident that STIX can describe (after minimisation), once each."""
    found: dict[str, Any] = {}

    def add(observable: Any) -> None:
        found.setdefault(observable.id, observable)

    for name in ("source.ip", "destination.ip"):
        for value in values(incident, name):
            if (address := _address(value)) is not None:
                add(address)
    for name in ("url.domain", "source.domain", "dns.question.name"):
        for value in values(incident, name):
            add(stix2.DomainName(value=str(value)))
    for value in values(incident, "url.original"):
        add(stix2.URL(value=str(value)))
    for value in values(incident, "user.name"):
        add(stix2.UserAccount(user_id=str(value)))
    hashes = {
        algorithm: values(incident, f"file.hash.{key}")[0]
        for algorithm, key in (("MD5", "md5"), ("SHA-1", "sha1"), ("SHA-256", "sha256"))
        if values(incident, f"file.hash.{key}")
    }
    if hashes:
        add(stix2.File(hashes=hashes, name=next(iter(values(incident, "file.name")), None)))
    return list(found.values())


def _pattern(observable: Any) -> str | None:
    value = str(getattr(observable, "value", "")).replace("\\", "\\\\").replace("'", "\\'")
    kinds = {"ipv4-addr": "ipv4-addr", "ipv6-addr": "ipv6-addr", "domain-name": "domain-name"}
    if observable.type in kinds:
        return f"[{kinds[observable.type]}:value = '{value}']"
    if observable.type == "url":
        return f"[url:value = '{value}']"
    return None


def incident_bundle(incident: dict[str, Any], province_id: str, province_name: str) -> stix2.Bundle:
    """The STIX bundle for one (already minimised) incident document."""
    incident_id = str(incident["incident.id"])
    level = str(incident.get("incident.level", "medium"))
    first = _time(incident["incident.first_seen"])
    last = _time(incident["incident.last_seen"])
    # One version per level the incident is forwarded at (module docstring).
    version = max(last, first) + timedelta(milliseconds=SEVERITY.get(level, 3))
    agency = str(incident.get("organization.id", "unknown"))
    count = max(int(incident.get("incident.alert_count", 1) or 1), 1)
    rule_id = str(incident.get("rule.id") or "socpipe-incident")
    province = stix2.Identity(
        id=stix_id("identity", "province", province_id),
        name=province_name,
        identity_class="organization",
        created=SHARED_VERSION,
        modified=SHARED_VERSION,
    )
    shared = {"created_by_ref": province.id, "created": SHARED_VERSION, "modified": SHARED_VERSION}
    created = {"created_by_ref": province.id, "created": first, "modified": version}
    site = stix2.Identity(
        id=stix_id("identity", "agency", province_id, agency),
        name=agency,
        identity_class="organization",
        **shared,
    )
    references = [
        {"source_name": "mitre-attack", "external_id": technique}
        for technique in values(incident, "threat.technique.id")
    ]
    references.append({"source_name": "sigma", "external_id": rule_id})
    pattern = stix2.AttackPattern(
        id=stix_id("attack-pattern", province_id, rule_id),
        name=str(incident.get("rule.name") or incident.get("incident.title") or "socpipe"),
        description=str(incident.get("rule.description") or "") or None,
        external_references=references,
        kill_chain_phases=[
            {"kill_chain_name": "mitre-attack", "phase_name": str(tactic).replace("_", "-")}
            for tactic in values(incident, "threat.tactic.name")
        ]
        or None,
        **shared,
    )
    seen = observables(incident)
    objects: list[Any] = [province, site, pattern, *seen]
    observed_refs = []
    if seen:
        observed = stix2.ObservedData(
            id=stix_id("observed-data", incident_id),
            first_observed=first,
            last_observed=max(first, last),
            number_observed=count,
            object_refs=[item.id for item in seen],
            **created,
        )
        objects.append(observed)
        observed_refs.append(observed.id)
    rules = ", ".join(str(rule) for rule in values(incident, "incident.rule_ids"))
    objects.append(
        stix2.Sighting(
            id=stix_id("sighting", incident_id),
            sighting_of_ref=pattern.id,
            where_sighted_refs=[site.id],
            observed_data_refs=observed_refs or None,
            first_seen=first,
            last_seen=max(first, last),
            count=count,
            confidence=CONFIDENCE.get(level, 50),
            description=(
                f"{level} incident {incident_id} in {agency}:"
                f" {incident.get('incident.title', '')} ({count} alerts; rules {rules})"
            ),
            external_references=[{"source_name": "socpipe", "external_id": incident_id}],
            labels=[f"level:{level}", f"severity:{SEVERITY.get(level, 3)}", f"agency:{agency}"],
            **created,
        )
    )
    main = next((item for item in seen if _pattern(item) is not None), None)
    if main is not None:
        objects.append(
            stix2.Indicator(
                id=stix_id("indicator", incident_id),
                name=f"{pattern.name}: {main.value}",
                pattern=_pattern(main),
                pattern_type="stix",
                valid_from=first,
                indicator_types=["malicious-activity"],
                confidence=CONFIDENCE.get(level, 50),
                kill_chain_phases=pattern.get("kill_chain_phases"),
                external_references=references,
                labels=[f"level:{level}", f"agency:{agency}"],
                **created,
            )
        )
    return stix2.Bundle(objects=objects, id=stix_id("bundle", incident_id, level))
