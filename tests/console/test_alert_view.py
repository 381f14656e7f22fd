"""What the alert page says about forwarding, per destination."""

from __future__ import annotations

from dataclasses import replace

from socpipe.console.alert_view import forwarding_states, timeline
from socpipe.console.health import DestinationHealth
from socpipe.core.config import (
    Config,
    DestinationConfig,
    ForwardingConfig,
    ForwardPolicyConfig,
    TaxiiDestinationConfig,
)

ALERT = {
    "rule.level": "high",
    "rule.id": "r1",
    "organization.id": "so-a",
    "tags": [],
    "alert.detected": "2026-03-03T10:00:00.000Z",
}
DETECTED = 1772532000.0  # 2026-03-03T10:00:00Z


def config(*policies: ForwardPolicyConfig) -> Config:
    destinations: list[DestinationConfig] = [
        TaxiiDestinationConfig(name=f"d{n}", url="https://taxii.example/", collection="c", policy=p)
        for n, p in enumerate(policies)
    ]
    return replace(Config(), forwarding=ForwardingConfig(destinations=destinations))


def health(name: str, backlog: int | None, last_success: float | None) -> DestinationHealth:
    return DestinationHealth(name, "taxii", True, "closed", last_success, None, "", backlog)


def record(destination: str, outcome: str, **fields: str) -> dict:
    return {
        "@timestamp": "2026-03-03T10:00:05.000Z",
        "forward.destination": destination,
        "forward.outcome": outcome,
        "incident.level": "high",
        **fields,
    }


def test_states_come_from_the_forwarding_ledger() -> None:
    setup = config(
        ForwardPolicyConfig(min_level="critical"),
        ForwardPolicyConfig(),
        ForwardPolicyConfig(),
        ForwardPolicyConfig(),
        ForwardPolicyConfig(),
        ForwardPolicyConfig(),
    )
    ledger = [
        record("d1", "acknowledged", **{"forward.receipt": "taxii status s1"}),
        record("d2", "refused", **{"forward.reason": "HTTP 400: bad"}),
        record("d3", "skipped", **{"forward.reason": "agency excluded"}),
        record("d5", "sent"),
    ]
    found = forwarding_states(ALERT, setup, [health("d4", 7, DETECTED)], ledger)
    assert [(s["destination"], s["state"]) for s in found] == [
        ("d0", "not forwarded"),
        ("d1", "acknowledged"),
        ("d2", "refused"),
        ("d3", "not forwarded"),
        ("d4", "waiting"),
        ("d5", "sent"),
    ]
    assert found[0]["detail"] == "policy: the incident is below critical"
    assert found[1]["detail"].endswith("incident level high: taxii status s1")
    assert found[2]["detail"].startswith("HTTP 400: bad")
    assert found[3]["detail"].startswith("policy: agency excluded")
    assert found[4]["detail"] == "7 incident updates ahead in the destination's queue"
    unknown = forwarding_states(ALERT, config(ForwardPolicyConfig()), None, [])
    assert unknown[0]["state"] == "unknown"
    caught_up = forwarding_states(ALERT, config(ForwardPolicyConfig()), [health("d0", 0, 0)], [])
    assert caught_up[0]["state"] == "not forwarded"


def test_timeline_is_newest_first() -> None:
    source = {
        "alert.history": [
            {"at": "2026-03-03T10:00:00.000Z", "field": "status"},
            {"at": "2026-03-03T11:00:00.000Z", "field": "note"},
            "junk",
        ]
    }
    assert [e["field"] for e in timeline(source)] == ["note", "status"]
