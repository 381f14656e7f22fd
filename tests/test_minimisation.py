"""Minimisation reaches every copy of a hashed field's value, not only the field itself
(issue 20, item 7: user names left through ``correlation.values``)."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from socpipe.core.config import MinimiseConfig
from socpipe.detectors.correlation import CorrelationEngine
from socpipe.detectors.correlation_rules import parse_correlation, resolve_correlation
from socpipe.detectors.rules import rule_policy
from socpipe.forwarding.cef import cef_line
from socpipe.forwarding.policy import Minimiser
from socpipe.forwarding.stix import incident_bundle

KEY = b"province-key"
HASH_USERS = MinimiseConfig(hash_fields=["user.name"])


def strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [text for value in node.values() for text in strings(value)]
    if isinstance(node, list):
        return [text for value in node for text in strings(value)]
    return [node] if isinstance(node, str) else []


def as_word(name: str, text: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text) is not None


def spraying(sample_alerts: list[dict]) -> dict:
    return next(
        alert
        for alert in sample_alerts
        if alert["rule.name"] == "Password Spraying From One Source"
        and "root" in alert["correlation.values"]
    )


def test_correlation_values_of_a_hashed_field_are_hashed(sample_alerts: list[dict]) -> None:
    alert = spraying(sample_alerts)
    names = set(alert["correlation.values"])
    assert names == {"admin", "oracle", "root", "test", "ubuntu"}
    assert alert["correlation.field"] == "user.name"
    minimiser = Minimiser(HASH_USERS, KEY)
    minimised = minimiser.apply(alert)

    everything = "\n".join(strings(minimised))
    assert not [name for name in names if as_word(name, everything)]
    # The center can still tell that two alerts name the same accounts.
    assert sorted(minimised["correlation.values"]) == sorted(
        minimiser.pseudonym(name) for name in names
    )
    assert minimised["user.name"] == minimiser.pseudonym(alert["user.name"])
    assert alert["correlation.values"] == sorted(names), "the stored alert keeps everything"


def test_a_forwarded_incident_names_its_users_nowhere(sample_incidents: list[dict]) -> None:
    """What leaves is the incident: its user lists, and the same names in other fields (the
    target of a Windows logon is the user who logged on)."""
    brute = next(i for i in sample_incidents if len(i.get("user.name", [])) >= 5)
    spraying = next(
        i for i in sample_incidents if i["incident.title"] == "Password Spraying From One Source"
    )
    assert spraying["user.target.name"] == spraying["user.name"]
    minimiser = Minimiser(HASH_USERS, KEY)
    for incident in (brute, spraying):
        names = set(incident["user.name"])
        minimised = minimiser.apply(incident)
        assert minimised["user.name"] == [
            minimiser.pseudonym(name) for name in incident["user.name"]
        ]
        # What the destinations send is made from the minimised incident.
        bundle = incident_bundle(minimised, "province", "Province").serialize()
        sent = "\n".join([*strings(minimised), bundle, cef_line(minimised)])
        assert not [name for name in names if as_word(name, sent)], incident["incident.title"]
        assert minimised["incident.title"] == incident["incident.title"]


def test_other_fields_and_metadata_are_left_alone(sample_alerts: list[dict]) -> None:
    alert = spraying(sample_alerts)
    minimised = Minimiser(HASH_USERS, KEY).apply(alert)
    changed = ("user.", "correlation.values", "events")
    unchanged = [key for key in alert if not key.startswith(changed)]
    assert {key: minimised[key] for key in unchanged} == {key: alert[key] for key in unchanged}
    # The evidence lines are raw records: they stay home unless keep_original is set.
    assert alert["events"] and all("event.original" in event for event in alert["events"])
    assert [event["event.id"] for event in minimised["events"]] == [
        event["event.id"] for event in alert["events"]
    ]
    assert not any("event.original" in event for event in minimised["events"])


def test_a_hashed_value_is_found_in_events_groups_text_and_indicator_matches() -> None:
    alert = {
        "alert.id": "a1",
        "rule.name": "Root Activity",  # the alert's own words are not event content
        "rule.level": "high",
        "user.name": "root",
        "process.command_line": "sudo -u root /bin/sh -c 'id root'",
        "url.original": "http://intranet/login?user=nguyenvana",
        "correlation.group": {"user.name": "nguyenvana", "source.ip": "203.0.113.5"},
        "indicator.matched_field": "user.name",
        "indicator.matched_value": "nguyenvana",
        "anomaly.explanation": ["steps by nguyenvana never seen in training"],
        "events": [
            {"user.name": "nguyenvana", "event.original": "x", "host.name": "web01"},
            {"user.target.name": "root", "message": "su root"},
        ],
    }
    minimised = Minimiser(MinimiseConfig(hash_fields=["user.name"], keep_original=True), KEY)
    result = minimised.apply(alert)
    everything = "\n".join(strings(result))
    assert not as_word("nguyenvana", everything)
    assert not as_word("root", everything.replace("Root Activity", ""))
    assert result["rule.name"] == "Root Activity" and result["rule.level"] == "high"
    assert result["correlation.group"]["source.ip"] == "203.0.113.5"
    assert result["events"][0]["host.name"] == "web01"
    assert result["events"][1]["message"] == f"su {minimised.pseudonym('root')}"


def test_a_user_named_like_metadata_does_not_deface_it() -> None:
    alert = {"rule.level": "high", "user.name": "high", "tags": ["high"], "note": "high"}
    result = Minimiser(HASH_USERS, KEY).apply(alert)
    assert result["rule.level"] == "high" and result["tags"] == ["high"]
    assert result["note"] == result["user.name"] != "high"


ALIASED = """
title: spraying by alias
id: 0c0c0c0c-0000-4000-8000-0000000000aa
correlation:
  type: value_count
  rules: [fail]
  group-by: [who]
  timespan: 60s
  aliases:
    who: {fail: user.name}
  condition: {gte: 2, field: source.ip}
"""


def test_an_alias_for_a_hashed_field_is_hashed_too() -> None:
    document = yaml.safe_load(ALIASED)
    rule = resolve_correlation(
        parse_correlation(document, "a.yml", rule_policy()), {"fail": "fail"}
    )
    engine = CorrelationEngine([rule])
    alerts: list[dict] = []
    for second, ip in enumerate(["203.0.113.1", "203.0.113.2"]):
        event = {
            "@timestamp": f"2026-03-03T10:00:0{second}.000Z",
            "event.id": f"e{second}",
            "user.name": "kimlien",
            "source.ip": ip,
        }
        alerts.extend(alert.to_dict() for alert in engine.observe("fail", event))
    (alert,) = alerts
    assert alert["correlation.aliases"] == ["who=user.name"]
    assert alert["correlation.group"] == {"who": "kimlien"} and alert["who"] == "kimlien"
    minimised = Minimiser(HASH_USERS, KEY).apply(alert)
    assert "kimlien" not in json.dumps(minimised)
    assert minimised["correlation.values"] == alert["correlation.values"]  # source.ip: not hashed
