"""An alert as a STIX 2.1 bundle, for the national center's TAXII collection.

What the bundle holds:

* ``identity`` of the province (the producer, ``created_by_ref`` of everything) and of the
  agency where the incident was seen;
* the observed entities as cyber-observables (IP addresses, domain, URL, user account, file
  hashes) inside one ``observed-data``;
* an ``attack-pattern`` for the rule, carrying its ATT&CK techniques as ``mitre-attack``
  external references and its tactics as kill-chain phases;
* a ``sighting`` of that attack pattern, where and when it was seen, how often, and the alert's
  level and id;
* an ``indicator`` for the main network observable (source address, domain or URL), when
  there is one, so the center can match it elsewhere.

Every id is derived from stable inputs (the alert id, the rule id, the province, the agency)
with UUIDv5, and every timestamp from the alert, so sending the same alert twice produces
byte-identical objects: the receiver recognises a re-send as the same object.
"""

from __future__ import annotations

import ipaddress
import uuid
from datetime import UTC, datetime
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


def observables(alert: dict[str, Any]) -> list[Any]:
    """The entities of an alert that STIX can describe (after minimisation)."""
    found: list[Any] = []
    for name in ("source.ip", "destination.ip"):
        if (address := _address(alert.get(name))) is not None:
            found.append(address)
    for name in ("url.domain", "source.domain", "dns.question.name"):
        if alert.get(name):
            found.append(stix2.DomainName(value=str(alert[name])))
    if alert.get("url.original"):
        found.append(stix2.URL(value=str(alert["url.original"])))
    if alert.get("user.name"):
        found.append(stix2.UserAccount(user_id=str(alert["user.name"])))
    hashes = {
        algorithm: alert[f"file.hash.{key}"]
        for algorithm, key in (("MD5", "md5"), ("SHA-1", "sha1"), ("SHA-256", "sha256"))
        if alert.get(f"file.hash.{key}")
    }
    if hashes:
        found.append(stix2.File(hashes=hashes, name=alert.get("file.name")))
    return found


def _pattern(observable: Any) -> str | None:
    value = str(getattr(observable, "value", "")).replace("\\", "\\\\").replace("'", "\\'")
    kinds = {"ipv4-addr": "ipv4-addr", "ipv6-addr": "ipv6-addr", "domain-name": "domain-name"}
    if observable.type in kinds:
        return f"[{kinds[observable.type]}:value = '{value}']"
    if observable.type == "url":
        return f"[url:value = '{value}']"
    return None


def alert_bundle(alert: dict[str, Any], province_id: str, province_name: str) -> stix2.Bundle:
    """The STIX bundle for one (already minimised) alert document."""
    alert_id = str(alert["alert.id"])
    first, last = _time(alert["alert.first_seen"]), _time(alert["alert.last_seen"])
    level = str(alert.get("rule.level", "medium"))
    agency = str(alert.get("organization.id", "unknown"))
    province = stix2.Identity(
        id=stix_id("identity", "province", province_id),
        name=province_name,
        identity_class="organization",
        created=SHARED_VERSION,
        modified=SHARED_VERSION,
    )
    shared = {"created_by_ref": province.id, "created": SHARED_VERSION, "modified": SHARED_VERSION}
    created = {"created_by_ref": province.id, "created": first, "modified": last}
    site = stix2.Identity(
        id=stix_id("identity", "agency", province_id, agency),
        name=agency,
        identity_class="organization",
        **shared,
    )
    references = [
        {"source_name": "mitre-attack", "external_id": technique}
        for technique in alert.get("threat.technique.id") or ()
    ]
    references.append({"source_name": "sigma", "external_id": str(alert["rule.id"])})
    pattern = stix2.AttackPattern(
        id=stix_id("attack-pattern", province_id, str(alert["rule.id"])),
        name=str(alert.get("rule.name", "socpipe detection")),
        description=str(alert.get("rule.description") or "") or None,
        external_references=references,
        kill_chain_phases=[
            {"kill_chain_name": "mitre-attack", "phase_name": tactic.replace("_", "-")}
            for tactic in alert.get("threat.tactic.name") or ()
        ]
        or None,
        **shared,
    )
    seen = observables(alert)
    objects: list[Any] = [province, site, pattern, *seen]
    observed_refs = []
    if seen:
        observed = stix2.ObservedData(
            id=stix_id("observed-data", alert_id),
            first_observed=first,
            last_observed=last,
            number_observed=max(int(alert.get("correlation.count", 1) or 1), 1),
            object_refs=[item.id for item in seen],
            **created,
        )
        objects.append(observed)
        observed_refs.append(observed.id)
    objects.append(
        stix2.Sighting(
            id=stix_id("sighting", alert_id),
            sighting_of_ref=pattern.id,
            where_sighted_refs=[site.id],
            observed_data_refs=observed_refs or None,
            first_seen=first,
            last_seen=last,
            count=max(int(alert.get("correlation.count", 1) or 1), 1),
            confidence=CONFIDENCE.get(level, 50),
            description=f"{level} alert {alert_id} in {agency}",
            external_references=[{"source_name": "socpipe", "external_id": alert_id}],
            labels=[f"level:{level}", f"severity:{SEVERITY.get(level, 3)}", f"agency:{agency}"],
            **created,
        )
    )
    main = next((item for item in seen if _pattern(item) is not None), None)
    if main is not None:
        objects.append(
            stix2.Indicator(
                id=stix_id("indicator", alert_id),
                name=f"{alert.get('rule.name', 'socpipe detection')}: {main.value}",
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
    return stix2.Bundle(objects=objects, id=stix_id("bundle", alert_id))
