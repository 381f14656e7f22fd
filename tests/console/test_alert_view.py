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


def test_states() -> None:
    setup = config(
        ForwardPolicyConfig(min_level="critical"),
        ForwardPolicyConfig(),
        ForwardPolicyConfig(),
        ForwardPolicyConfig(),
        ForwardPolicyConfig(exclude_agencies=["so-a"]),
    )
    found = forwarding_states(
        ALERT,
        setup,
        [
            health("d1", 0, DETECTED + 5),
            health("d2", 0, DETECTED - 5),
            health("d3", 7, DETECTED + 5),
        ],
    )
    assert [(s["destination"], s["state"]) for s in found] == [
        ("d0", "not forwarded"),
        ("d1", "sent"),
        ("d2", "handled"),
        ("d3", "waiting"),
        ("d4", "not forwarded"),
    ]
    assert found[0]["detail"] == "policy: level below critical"
    assert found[3]["detail"] == "7 alerts ahead in the destination's queue"
    assert found[4]["detail"] == "policy: agency excluded"
    unknown = forwarding_states(ALERT, config(ForwardPolicyConfig()), None)
    assert unknown[0]["state"] == "unknown"


def test_timeline_is_newest_first() -> None:
    source = {
        "alert.history": [
            {"at": "2026-03-03T10:00:00.000Z", "field": "status"},
            {"at": "2026-03-03T11:00:00.000Z", "field": "note"},
            "junk",
        ]
    }
    assert [e["field"] for e in timeline(source)] == ["note", "status"]
