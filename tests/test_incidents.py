"""Incidents (detectors/incidents.py): keys, windows, evidence, bounded memory, replays."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from socpipe.collectors.parsers import ParseContext, parse_detected
from socpipe.detectors.alert import Alert
from socpipe.detectors.detection import Detector
from socpipe.detectors.incidents import IncidentTracker, alert_key, incident_id
from socpipe.detectors.rules import RuleLoadReport, load_rules
from tests.conftest import REPO

START = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)  # on a 30-minute boundary


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    level: str = "medium"
    tags: tuple[str, ...] = ()
    source: str = "test.yml"
    ruleset: str = "test.yml"
    description: str = ""
    author: str = ""
    references: tuple[str, ...] = ()


PROBE = Rule("probe", "Probe", "low")
FAILED = Rule("failed", "Failed login", "medium", ("attack.credential_access", "attack.t1110"))
BRUTE = Rule("brute", "Brute force", "high")
CHAIN = Rule("chain", "Brute force, then success", "critical")


def stamp(seconds: float) -> str:
    return (START + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def matched(
    rule: Rule, seconds: float, number: int, agency: str = "so-tttt", **fields: Any
) -> Alert:
    event = {
        "@timestamp": stamp(seconds),
        "event.id": f"e{number}",
        "organization.id": agency,
        "host.name": "web01",
        "source.ip": "203.0.113.5",
        **fields,
    }
    return Alert.from_match(rule, event)


def correlated(
    rule: Rule,
    first: float,
    last: float,
    event_ids: list[str],
    alert_ids: list[str] | None = None,
    agency: str = "so-tttt",
    source: str = "203.0.113.5",
) -> Alert:
    return Alert(
        id=f"{rule.id}-{first}-{last}",
        rule=rule,
        timestamp=stamp(last),
        agency=agency,
        entities={"source.ip": source},
        events=(),
        first_seen=stamp(first),
        last_seen=stamp(last),
        details={
            "correlation.type": "event_count",
            "correlation.group": {"source.ip": source},
            "correlation.event_ids": event_ids,
            "correlation.alert_ids": alert_ids or [],
        },
    )


def test_repeats_of_one_rule_on_one_entity_in_one_window_are_one_incident() -> None:
    tracker = IncidentTracker(window_secs=1800)
    ids = [tracker.assign([matched(FAILED, 60 * n, n)])[0] for n in range(20)]
    assert len(set(ids)) == 1
    [document] = tracker.updates()
    assert document["incident.id"] == ids[0]
    assert document["incident.alert_count"] == 20
    assert document["incident.first_seen"] == stamp(0)
    assert document["incident.last_seen"] == stamp(60 * 19)
    assert document["incident.level"] == "medium" and document["event.severity"] == 3
    assert document["source.ip"] == ["203.0.113.5"] and document["host.name"] == ["web01"]
    assert document["threat.technique.id"] == ["T1110"]
    assert document["incident.rules"] == [
        {"rule.id": "failed", "rule.name": "Failed login", "rule.level": "medium", "alerts": 20}
    ]
    assert document["incident.previous_level"] is None


def test_the_key_is_the_rule_the_host_the_actor_and_the_window() -> None:
    tracker = IncidentTracker(window_secs=1800)
    base = tracker.assign([matched(FAILED, 0, 1)])[0]
    others = [
        matched(FAILED, 10, 2, **{"source.ip": "198.51.100.9"}),  # another source
        matched(FAILED, 10, 3, **{"host.name": "web02"}),  # another host
        matched(FAILED, 10, 4, agency="so-other"),  # another agency
        matched(PROBE, 10, 5),  # another rule
        matched(FAILED, 1800, 6),  # the next window
    ]
    ids = [tracker.assign([alert])[0] for alert in others]
    assert len({base, *ids}) == 6
    # Same key, other fields: still a repeat (the user is not the actor when an address is).
    assert tracker.assign([matched(FAILED, 20, 7, **{"user.name": "root"})])[0] == base
    # Without an address the user is the actor.
    no_address: dict[str, Any] = {"source.ip": None, "user.name": "hanh"}
    assert alert_key(matched(FAILED, 0, 8, **no_address)) == (
        "failed",
        "host.name=web01",
        "user.name=hanh",
    )


def test_ids_follow_from_the_key_alone() -> None:
    """The same alerts give the same ids in another process (deterministic, no randomness,
    no arrival order beyond the stream's own)."""
    alerts = [matched(FAILED, 5 * n, n, **{"source.ip": f"10.0.0.{n % 3}"}) for n in range(9)]
    first = [IncidentTracker().assign([alert])[0] for alert in alerts]
    second = IncidentTracker()
    assert [second.assign([alert])[0] for alert in alerts] == first
    expected = incident_id("so-tttt", alert_key(alerts[0]), START.timestamp())
    assert first[0] == expected


def test_a_correlation_joins_the_incident_of_the_alerts_it_counted() -> None:
    tracker = IncidentTracker()
    failed = [matched(FAILED, n, n) for n in range(5)]
    incident = {tracker.assign([alert])[0] for alert in failed}
    brute = correlated(BRUTE, 0, 4, [f"e{n}" for n in range(5)], source="203.0.113.5")
    assert {tracker.assign([brute])[0]} == incident
    [document] = tracker.updates()
    assert document["incident.level"] == "high"
    assert document["incident.title"] == "Brute force"
    assert document["rule.id"] == "brute"
    assert document["incident.alert_count"] == 6


def test_alerts_of_one_event_are_placed_correlation_first() -> None:
    """The login that completes "brute force, then success" joins the brute force's incident
    instead of opening one of its own, whatever order the detector returned them in."""
    tracker = IncidentTracker()
    brute = correlated(BRUTE, 0, 30, ["e1", "e2"])
    brute_incident = tracker.assign([brute])[0]
    login = matched(Rule("login", "Root login", "high"), 60, 9)
    chain = correlated(CHAIN, 0, 60, ["e9"], alert_ids=[brute.id])
    assert tracker.assign([login, chain]) == [brute_incident, brute_incident]
    # The login's key now belongs to that incident: a second login from there joins it too.
    again = matched(Rule("login", "Root login", "high"), 90, 10)
    assert tracker.assign([again]) == [brute_incident]
    [document] = tracker.updates()
    assert document["incident.level"] == "critical"
    assert document["incident.alert_count"] == 4
    assert document["incident.related_ids"] == []


def test_evidence_never_crosses_agencies() -> None:
    tracker = IncidentTracker()
    here = tracker.assign([matched(PROBE, 0, 1, agency="so-a")])[0]
    there = tracker.assign([matched(PROBE, 0, 2, agency="so-b")])[0]
    campaign = correlated(BRUTE, 0, 10, ["e1", "e2"], agency="multiple")
    own = tracker.assign([campaign])[0]
    assert own not in (here, there)
    documents = {document["incident.id"]: document for document in tracker.updates()}
    assert sorted(documents[own]["incident.related_ids"]) == sorted([here, there])
    assert documents[own]["organization.id"] == "multiple"


def test_evidence_reaches_back_one_window_only() -> None:
    tracker = IncidentTracker(window_secs=600, lateness_secs=0)
    old = tracker.assign([matched(FAILED, 0, 1)])[0]
    # Twenty minutes on (two windows): the old incident takes no more alerts on evidence.
    late = correlated(BRUTE, 0, 1200, ["e1"])
    assert tracker.assign([late])[0] != old
    # Within the next window it still would have.
    tracker = IncidentTracker(window_secs=600, lateness_secs=0)
    old = tracker.assign([matched(FAILED, 0, 1)])[0]
    assert tracker.assign([correlated(BRUTE, 0, 1100, ["e1"])])[0] == old


def test_updates_say_the_previous_level_once_per_change() -> None:
    tracker = IncidentTracker()
    tracker.assign([matched(PROBE, 0, 1, **{"source.ip": "10.0.0.1"})])
    tracker.assign([matched(FAILED, 1, 2)])
    first = {doc["incident.title"]: doc["incident.previous_level"] for doc in tracker.updates()}
    assert first == {"Probe": None, "Failed login": None}
    assert tracker.updates() == []  # nothing changed since
    tracker.assign([correlated(BRUTE, 1, 2, ["e2"])])
    [raised] = tracker.updates()
    assert (raised["incident.previous_level"], raised["incident.level"]) == ("medium", "high")
    tracker.assign([matched(FAILED, 3, 3)])
    [grown] = tracker.updates()
    assert (grown["incident.previous_level"], grown["incident.level"]) == ("high", "high")


def test_incidents_close_on_their_own_sources_time() -> None:
    tracker = IncidentTracker(window_secs=600, lateness_secs=60)
    lagging = tracker.assign([matched(FAILED, 0, 1, **{"host.name": "slow"})])[0]
    tracker.assign([matched(FAILED, 0, 2)])
    # web01's time moves five windows on: its own first incident closes, slow's does not.
    tracker.assign([matched(FAILED, 3000, 3)])
    assert [doc["incident.alert_count"] for doc in tracker.closed()] == [1]
    assert tracker.assign([matched(FAILED, 30, 4, **{"host.name": "slow"})])[0] == lagging
    assert tracker.open_count == 2
    # slow's own time passing the reach closes it, once.
    tracker.assign([matched(PROBE, 3000, 5, **{"host.name": "slow"})])
    closed = tracker.closed()
    assert [doc["incident.id"] for doc in closed] == [lagging]
    assert closed[0]["incident.alert_count"] == 2
    assert tracker.closed() == []


def test_memory_is_bounded(caplog: pytest.LogCaptureFixture) -> None:
    tracker = IncidentTracker(max_incidents=50, max_links=200)
    for number in range(1000):
        alert = matched(
            FAILED, number, number, **{"source.ip": f"10.0.{number // 250}.{number % 250}"}
        )
        tracker.assign([alert])
        assert tracker.open_count <= 50
        assert tracker.link_count <= 3 * 200
    assert tracker.stats.evicted == 950
    assert "incident state reached its cap of 50" in caplog.text
    # Evicted incidents are handed on (their last state), not lost silently.
    assert len(tracker.closed()) == 950


def test_listed_members_and_entity_values_are_capped_and_counts_exact() -> None:
    tracker = IncidentTracker()
    for number in range(300):
        tracker.assign([matched(FAILED, number, number, **{"user.name": f"user{number}"})])
    [document] = tracker.updates()
    assert document["incident.alert_count"] == 300
    assert len(document["incident.alert_ids"]) == len(document["incident.alerts"]) == 100
    assert len(document["user.name"]) == 20


# --- the real detector: a brute force, and a restart -------------------------------------


def failures(count: int, every_secs: int = 1, start: datetime = START) -> list[str]:
    """Failed root logins from one source, ``every_secs`` apart, as sshd logs them."""
    return [
        (start + timedelta(seconds=n * every_secs)).strftime("%b %e %H:%M:%S")
        + f" web01 sshd[811]: Failed password for root from 203.0.113.50 port {40000 + n} ssh2"
        for n in range(count)
    ]


def events(raw: list[str], agency: str = "so-tttt") -> list[dict[str, Any]]:
    context = ParseContext(agency_id=agency, reference_time=datetime(2026, 3, 10, tzinfo=UTC))
    parsed = []
    for number, line in enumerate(raw):
        event, _ = parse_detected(line, context)
        event["event.id"] = f"line-{number}"
        parsed.append(event)
    return parsed


@pytest.fixture(scope="module")
def rules() -> RuleLoadReport:
    return load_rules([REPO / "rules"])


def test_a_brute_force_is_one_incident(rules: RuleLoadReport) -> None:
    detector, tracker = Detector(rules), IncidentTracker()
    success = (START + timedelta(seconds=40)).strftime("%b %e %H:%M:%S") + (
        " web01 sshd[812]: Accepted password for root from 203.0.113.50 port 41000 ssh2"
    )
    raised: list[Alert] = []
    for event in events([*failures(15), success]):
        alerts = detector.process(event)
        tracker.assign(alerts)
        raised.extend(alerts)
    updates = tracker.updates()
    assert len(raised) > 15  # each failure for root raises, the brute force, the login
    assert len(updates) == 1
    [incident] = updates
    assert incident["incident.alert_count"] == len(raised)
    assert incident["incident.level"] == "critical"
    assert set(incident["incident.alert_ids"]) == {alert.id for alert in raised}


def run(
    rules: RuleLoadReport, history: list[dict[str, Any]], live: list[dict[str, Any]]
) -> tuple[list[list[str]], list[dict[str, Any]]]:
    """What the detect stage does: ``history`` re-read (alerts feed the tracker, updates are
    dropped: they were published before), then ``live`` events; the ids and updates of live."""
    detector, tracker = Detector(rules), IncidentTracker()
    for event in history:
        tracker.assign(detector.process(event))
    tracker.updates()
    ids, updates = [], []
    for event in live:
        ids.append(tracker.assign(detector.process(event)))
        updates.extend(tracker.updates())
    return ids, updates


def test_a_restart_rebuilds_the_same_incidents_from_the_horizon(rules: RuleLoadReport) -> None:
    """A persistent attacker for three hours, and a restart in the middle: re-reading the
    horizon before the committed offset gives the live events after it the incident ids and
    the updates (counts, levels, previous levels) of an unbroken run."""
    stream = events(failures(540, every_secs=20))
    split = 300
    horizon = max(Detector(rules).state_horizon_secs, IncidentTracker().horizon_secs)
    cut = datetime.fromisoformat(stream[split]["@timestamp"]).timestamp() - horizon
    within = [
        e for e in stream[:split] if datetime.fromisoformat(e["@timestamp"]).timestamp() >= cut
    ]
    assert 0 < len(within) < split  # the re-read starts inside the stream

    expected = run(rules, stream[:split], stream[split:])
    assert run(rules, within, stream[split:]) == expected
    assert len({incident for ids in expected[0] for incident in ids}) > 2  # several windows
    # Re-reading too little does not: the test can tell.
    assert run(rules, stream[split - 10 : split], stream[split:]) != expected
