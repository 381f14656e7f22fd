"""The alert document."""

from __future__ import annotations

import yaml

from socpipe.detectors.alert import Alert, alert_id
from socpipe.detectors.rules import compile_rule
from tests.conftest import make_rule

RULE_TEXT = "sel:\n  f: x\ncondition: sel\n"


def event(**fields: object) -> dict:
    return {
        "@timestamp": "2026-03-03T03:00:00.000Z",
        "event.original": "raw",
        "event.id": "e1",
        **fields,
    }


def test_alert_id_depends_on_rule_and_event_only() -> None:
    assert alert_id("r1", event()) == alert_id("r1", event(extra="ignored"))
    assert alert_id("r1", event()) != alert_id("r2", event())
    assert alert_id("r1", event()) != alert_id("r1", {**event(), "event.id": "e2"})


def test_alert_document_fields() -> None:
    rule = make_rule(RULE_TEXT)
    document = Alert.from_match(
        rule,
        event(**{"source.ip": "203.0.113.5", "organization.id": "so-tttt", "secret.field": "s"}),
    ).to_dict()
    assert document["rule.id"] == rule.id
    assert document["organization.id"] == "so-tttt"
    assert document["source.ip"] == "203.0.113.5"
    assert "secret.field" not in document
    assert document["events"][0]["secret.field"] == "s"
    assert document["alert.first_seen"] == document["alert.last_seen"] == "2026-03-03T03:00:00.000Z"
    assert document["event.kind"] == "alert"


def test_attack_tags_split_into_techniques_and_tactics() -> None:
    text = "title: t\nid: 0c7a8f2e-9f55-4e8a-9a43-6c39a2b4f001\nlogsource: {product: test}\ntags: [attack.credential_access, attack.t1110.001, attack.g0016, attack.s0002, cve.2021-44228]\ndetection:\n  sel: {f: x}\n  condition: sel\n"
    rule = compile_rule(yaml.safe_load(text), "t.yml")
    alert = Alert.from_match(rule, event())
    assert alert.techniques == ["T1110.001"]
    assert alert.tactics == ["credential_access"]
