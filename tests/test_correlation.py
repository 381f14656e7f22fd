"""Correlation semantics: windows, order, grouping, expiry and the memory cap."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from socpipe.detectors.correlation import CorrelationEngine
from socpipe.detectors.correlation_rules import (
    CorrelationRule,
    parse_correlation,
    resolve_correlation,
)
from socpipe.detectors.errors import RuleError
from socpipe.detectors.rules import RULE_POLICY, load_rules

START = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)
C1, C2 = "c1c1c1c1-0000-4000-8000-000000000001", "c2c2c2c2-0000-4000-8000-000000000002"
KNOWN = {"fail": "fail", "ok": "ok", "probe": "probe", "login_failed_by_name": "fail"}


def correlation(text: str) -> CorrelationRule:
    document = yaml.safe_load(text)
    document.setdefault("title", "test correlation")
    document.setdefault("id", "0c0c0c0c-0000-4000-8000-000000000001")
    return resolve_correlation(parse_correlation(document, "test.yml", RULE_POLICY), KNOWN)


def event(seconds: float, number: int = 0, **fields: Any) -> dict[str, Any]:
    moment = START + timedelta(seconds=seconds)
    return {
        "@timestamp": moment.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "event.id": f"e{number}",
        "organization.id": "so-tttt",
        "source.ip": "203.0.113.5",
        **fields,
    }


def feed(engine: CorrelationEngine, matches: list[tuple[str, dict[str, Any]]]) -> list:
    alerts = []
    for rule_id, matched in matches:
        alerts.extend(engine.observe(rule_id, matched))
    return alerts


COUNT = """
correlation:
  type: event_count
  rules: [fail]
  group-by: [source.ip]
  timespan: 60s
  condition: {gte: 3}
"""


def test_event_count_fires_when_the_window_holds_enough() -> None:
    engine = CorrelationEngine([correlation(COUNT)])
    assert feed(engine, [("fail", event(0, 1)), ("fail", event(10, 2))]) == []
    [alert] = engine.observe("fail", event(20, 3))
    document = alert.to_dict()
    assert document["correlation.group"] == {"source.ip": "203.0.113.5"}
    assert document["correlation.count"] == 3
    assert document["correlation.event_ids"] == ["e1", "e2", "e3"]
    assert document["alert.first_seen"] == "2026-03-03T10:00:00.000Z"
    assert document["alert.last_seen"] == "2026-03-03T10:00:20.000Z"
    assert document["source.ip"] == "203.0.113.5"
    assert alert.agency == "so-tttt"


def test_window_edges_are_inclusive_and_one_second_more_is_outside() -> None:
    inside = CorrelationEngine([correlation(COUNT)])
    assert feed(inside, [("fail", event(0, 1)), ("fail", event(30, 2)), ("fail", event(60, 3))])
    outside = CorrelationEngine([correlation(COUNT)])
    assert not feed(
        outside, [("fail", event(0, 1)), ("fail", event(30, 2)), ("fail", event(61, 3))]
    )


def test_fired_events_are_consumed_so_the_next_alert_needs_fresh_ones() -> None:
    engine = CorrelationEngine([correlation(COUNT)])
    alerts = feed(engine, [("fail", event(i, i)) for i in range(8)])
    assert len(alerts) == 2
    assert alerts[0].id != alerts[1].id


def test_out_of_order_events_within_lateness_land_in_their_window() -> None:
    engine = CorrelationEngine([correlation(COUNT)], lateness=120)
    # The newest event arrives first; the three older ones still form a window of their own.
    arrivals = [event(200, 1), event(100, 2), event(130, 3), event(150, 4)]
    alerts = feed(engine, [("fail", matched) for matched in arrivals])
    assert [alert.to_dict()["correlation.event_ids"] for alert in alerts] == [["e2", "e3", "e4"]]


def test_events_later_than_the_allowance_are_counted_and_left_out() -> None:
    engine = CorrelationEngine([correlation(COUNT)], lateness=30)
    feed(engine, [("fail", event(300)), ("fail", event(100)), ("fail", event(110))])
    assert engine.stats.late == 2


def test_group_by_separates_sources_and_skips_events_without_the_field() -> None:
    engine = CorrelationEngine([correlation(COUNT)])
    mixed = [
        ("fail", event(1, 1)),
        ("fail", event(2, 2, **{"source.ip": "198.51.100.1"})),
        ("fail", event(3, 3, **{"source.ip": None})),
        ("fail", event(4, 4, **{"source.ip": ""})),
        ("fail", event(5, 5)),
    ]
    assert feed(engine, mixed) == []
    assert engine.stats.missing_group_field == 2
    assert engine.group_count == 2


def test_value_count_counts_distinct_values() -> None:
    rule = correlation("""
correlation:
  type: value_count
  rules: [fail]
  group-by: [source.ip]
  timespan: 10m
  condition: {gte: 3, field: user.name}
""")
    engine = CorrelationEngine([rule])
    same_user = [("fail", event(i, i, **{"user.name": "admin"})) for i in range(10)]
    assert feed(engine, same_user) == []
    [alert] = feed(
        engine,
        [
            ("fail", event(20, n, **{"user.name": user}))
            for n, user in ((20, "oracle"), (21, "test"))
        ],
    )
    assert alert.to_dict()["correlation.values"] == ["admin", "oracle", "test"]


def test_temporal_needs_every_rule_in_any_order() -> None:
    rule = correlation("""
correlation:
  type: temporal
  rules: [fail, probe]
  group-by: [source.ip]
  timespan: 5m
""")
    engine = CorrelationEngine([rule])
    assert feed(engine, [("fail", event(0)), ("fail", event(10))]) == []
    assert len(engine.observe("probe", event(5))) == 1
    too_far = CorrelationEngine([rule])
    assert feed(too_far, [("probe", event(0)), ("fail", event(301))]) == []


def test_temporal_ordered_needs_the_listed_order() -> None:
    rule = correlation("""
correlation:
  type: temporal_ordered
  rules: [fail, ok]
  group-by: [source.ip]
  timespan: 5m
""")
    wrong_order = CorrelationEngine([rule])
    assert feed(wrong_order, [("ok", event(0)), ("fail", event(10))]) == []
    right_order = CorrelationEngine([rule])
    # Arrival order differs from event-time order: event time decides.
    assert len(feed(right_order, [("ok", event(20)), ("fail", event(10))])) == 1


def test_temporal_ordered_finds_a_chain_among_many_entries_and_equal_times() -> None:
    rule = correlation("""
correlation:
  type: temporal_ordered
  rules: [fail, probe, ok]
  group-by: [source.ip]
  timespan: 60s
""")
    engine = CorrelationEngine([rule])
    # Failures long before: too old to start a chain that ends within the timespan.
    assert feed(engine, [("fail", event(0, n)) for n in range(300)]) == []
    assert feed(engine, [("probe", event(100, 300)), ("ok", event(120, 301))]) == []
    # A burst within one second (one syslog timestamp): equal times count as in order.
    [alert] = feed(
        engine, [("ok", event(200, 302)), ("probe", event(200, 303)), ("fail", event(200, 304))]
    )
    assert alert.to_dict()["correlation.count"] == 3


def test_a_replayed_burst_with_one_timestamp_counts_once() -> None:
    rule = correlation(COUNT.replace("gte: 3", "gte: 1000"))
    engine = CorrelationEngine([rule])
    burst = [("fail", event(0, number)) for number in range(400)]
    feed(engine, burst)
    feed(engine, list(reversed(burst)))
    assert engine.entry_count == 400
    [group] = engine._groups.values()
    assert [entry.event_id for entry in group.entries] == sorted(
        entry.event_id for entry in group.entries
    )


def test_upper_bound_conditions_are_judged_when_the_window_closes() -> None:
    rule = correlation("""
correlation:
  type: event_count
  rules: [fail]
  group-by: [source.ip]
  timespan: 60s
  condition: {lt: 3}
""")
    engine = CorrelationEngine([rule], lateness=0)
    quiet = {"source.ip": "198.51.100.9"}
    assert feed(engine, [("fail", event(0, 1)), ("fail", event(1, 2, **quiet))]) == []
    busy = [("fail", event(2 + i, 10 + i)) for i in range(4)]
    assert feed(engine, busy) == []
    # Nothing is judged before the window is over; the flush at end of input closes it.
    alerts = engine.flush()
    assert [alert.to_dict()["correlation.group"]["source.ip"] for alert in alerts] == [
        "198.51.100.9"
    ]


def test_window_closes_once_event_time_passes_its_end(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("socpipe.detectors.correlation.SWEEP_EVERY", 1)
    rule = correlation("""
correlation:
  type: event_count
  rules: [fail]
  group-by: [source.ip]
  timespan: 60s
  condition: {gte: 2, lte: 3}
""")
    engine = CorrelationEngine([rule], lateness=0)
    assert feed(engine, [("fail", event(0, 1)), ("fail", event(1, 2))]) == []
    # Matches of another group move event time past the window's end; the window is judged
    # at the next sweep (sweeps wait for as many matches as there are groups).
    later = {"source.ip": "198.51.100.9"}
    [alert] = feed(engine, [("fail", event(100, 3, **later)), ("fail", event(101, 4, **later))])
    assert alert.to_dict()["correlation.count"] == 2


def test_range_condition() -> None:
    rule = correlation("""
correlation:
  type: event_count
  rules: [fail]
  group-by: [source.ip]
  timespan: 60s
  condition: {gte: 3, lte: 5}
""")
    for count, fires in ((2, False), (4, True), (7, False)):
        engine = CorrelationEngine([rule])
        feed(engine, [("fail", event(i, i)) for i in range(count)])
        assert bool(engine.flush()) is fires, count


def test_state_expires_with_its_timespan(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("socpipe.detectors.correlation.SWEEP_EVERY", 1)
    engine = CorrelationEngine([correlation(COUNT)], lateness=10)
    for number in range(50):
        engine.observe("fail", event(0, number, **{"source.ip": f"10.0.0.{number}"}))
    assert engine.group_count == 50
    # Expired groups go once as many matches have come as there are groups (the walk over all
    # groups stays under one visit per match).
    for number in range(51):
        engine.observe("fail", event(1000, 100 + number))
    assert engine.group_count <= 1, "only the group of the late matches may remain"


def test_memory_cap_evicts_least_recently_active_groups(caplog: pytest.LogCaptureFixture) -> None:
    engine = CorrelationEngine([correlation(COUNT)], max_groups=3)
    for number in range(5):
        engine.observe("fail", event(number, number, **{"source.ip": f"10.0.0.{number}"}))
    assert engine.group_count == 3
    assert engine.stats.groups_evicted == 2
    assert "correlation state reached the cap of 3 groups" in caplog.text
    assert len(caplog.records) == 1, "one warning a minute, not one per eviction"
    # The evicted groups restart from nothing: 10.0.0.0 needs three fresh events.
    fresh = [("fail", event(10, n, **{"source.ip": "10.0.0.0"})) for n in (10, 11)]
    assert feed(engine, fresh) == []


def test_per_group_entry_cap_drops_oldest() -> None:
    rule = correlation(COUNT.replace("gte: 3", "gte: 1000"))
    engine = CorrelationEngine([rule], max_entries_per_group=5)
    feed(engine, [("fail", event(i, i)) for i in range(8)])
    assert engine.stats.entries_dropped == 3


def test_aliases_name_the_group_field_per_rule() -> None:
    rule = correlation("""
correlation:
  type: temporal
  rules: [fail, probe]
  group-by: [attacker]
  timespan: 5m
  aliases:
    attacker:
      fail: source.ip
      probe: client.ip
""")
    engine = CorrelationEngine([rule])
    engine.observe("fail", event(0, 1))
    [alert] = engine.observe("probe", event(1, 2, **{"client.ip": "203.0.113.5"}))
    assert alert.to_dict()["correlation.group"] == {"attacker": "203.0.113.5"}


def test_future_timestamps_do_not_advance_time() -> None:
    now = START.timestamp()
    engine = CorrelationEngine([correlation(COUNT)], clock=lambda: now)
    engine.observe("fail", event(10 * 365 * 86400))
    assert engine.stats.future == 1
    assert len(feed(engine, [("fail", event(i, i)) for i in range(3)])) == 1


@pytest.mark.parametrize(
    ("section", "reason"),
    [
        (
            "type: event_count\n  rules: [nope]\n  timespan: 1m\n  condition: {gte: 1}",
            "unknown rule",
        ),
        (
            "type: event_count\n  rules: [fail]\n  timespan: 1x\n  condition: {gte: 1}",
            "(?i)timespan",
        ),
        ("type: value_count\n  rules: [fail]\n  timespan: 1m\n  condition: {gte: 1}", "field"),
        (
            "type: event_count\n  rules: [fail]\n  timespan: 1m\n  condition: {gte: many}",
            "condition count",
        ),
        (
            "type: temporal_ordered\n  rules: [fail, ok]\n  timespan: 1m\n  condition: {gte: 1}",
            "no condition",
        ),
        ("type: whatever\n  rules: [fail]\n  timespan: 1m", "correlation type"),
    ],
)
def test_broken_correlations_say_why(section: str, reason: str) -> None:
    with pytest.raises(RuleError, match=reason):
        correlation(f"correlation:\n  {section}\n")


def test_references_by_name_chains_and_cycles(tmp_path: Path) -> None:
    base = (
        "title: base\nid: 11111111-1111-4111-8111-111111111111\nname: base_rule\n"
        "logsource: {product: test}\ndetection:\n  sel: {a: 1}\n  condition: sel\n"
    )
    (tmp_path / "base.yml").write_text(base)
    (tmp_path / "first.yml").write_text(
        "title: first\nid: c1c1c1c1-0000-4000-8000-000000000001\nname: first\ncorrelation:\n  type: event_count\n"
        "  rules: [base_rule]\n  timespan: 1m\n  condition: {gte: 2}\n"
    )
    (tmp_path / "second.yml").write_text(
        "title: second\nid: c2c2c2c2-0000-4000-8000-000000000002\ncorrelation:\n  type: event_count\n"
        "  rules: [first]\n  timespan: 1h\n  condition: {gte: 2}\n"
    )
    (tmp_path / "loop_a.yml").write_text(
        "title: a\nid: 1a1a1a1a-0000-4000-8000-00000000000a\nname: loop_a\ncorrelation:\n  type: event_count\n"
        "  rules: [loop_b]\n  timespan: 1m\n  condition: {gte: 2}\n"
    )
    (tmp_path / "loop_b.yml").write_text(
        "title: b\nid: 1b1b1b1b-0000-4000-8000-00000000000b\nname: loop_b\ncorrelation:\n  type: event_count\n"
        "  rules: [loop_a]\n  timespan: 1m\n  condition: {gte: 2}\n"
    )
    report = load_rules([tmp_path])
    assert sorted(rule.id for rule in report.correlations) == [C1, C2]
    assert {str(error.source).rsplit("/", 1)[-1] for error in report.errors} == {
        "loop_a.yml",
        "loop_b.yml",
    }
    first, second = sorted(report.correlations, key=lambda rule: rule.id)
    engine = CorrelationEngine([first, second])
    base_id = "11111111-1111-4111-8111-111111111111"
    alerts = feed(engine, [(base_id, event(i, i)) for i in range(4)])
    # Two "first" alerts, and the second of them completes "second" (chained correlation).
    assert [alert.rule.id for alert in alerts] == [C1, C1, C2]


def test_a_replayed_event_counts_once() -> None:
    engine = CorrelationEngine([correlation(COUNT)])
    # The daemon re-reads a batch after a failure: the same events arrive again.
    assert feed(engine, [("fail", event(1, 1)), ("fail", event(2, 2))] * 3) == []


def test_total_entries_are_capped_and_accounted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("socpipe.detectors.correlation.SWEEP_EVERY", 7)
    rng = random.Random(3)
    rule = correlation(COUNT.replace("gte: 3", "gte: 1000"))
    engine = CorrelationEngine([rule], max_entries=50, max_entries_per_group=20)
    for number in range(2000):
        source = {"source.ip": f"10.0.0.{rng.randint(1, 30)}"}
        engine.observe("fail", event(number // 10 + rng.randint(0, 30), number, **source))
        held = sum(len(group.entries) for group in engine._groups.values())
        assert engine.entry_count == held <= 50
    assert engine.stats.groups_evicted > 0
    engine.flush()
    assert engine.entry_count == 0


def test_chained_correlations_list_member_alerts_apart_from_member_events() -> None:
    """A correlation counting another correlation's alerts names them as alerts, not events."""
    chain = """
correlation:
  type: temporal_ordered
  rules: [c1, ok]
  group-by: [source.ip]
  timespan: 10m
"""
    counted = resolve_correlation(
        parse_correlation(
            {**yaml.safe_load(COUNT.replace("gte: 3", "gte: 2")), "title": "c1", "id": C1},
            "c1.yml",
            RULE_POLICY,
        ),
        KNOWN,
    )
    chained = resolve_correlation(
        parse_correlation(
            {**yaml.safe_load(chain), "title": "c2", "id": C2}, "c2.yml", RULE_POLICY
        ),
        {**KNOWN, "c1": C1},
    )
    engine = CorrelationEngine([counted, chained])
    alerts = feed(
        engine,
        [
            ("fail", event(0, 1)),
            ("fail", event(5, 2)),
            ("ok", event(30, 3, **{"event.original": "ok line"})),
        ],
    )
    brute, then = (alert.to_dict() for alert in alerts)
    assert brute["correlation.event_ids"] == ["e1", "e2"]
    assert brute["correlation.alert_ids"] == []
    assert then["rule.id"] == C2
    assert then["correlation.event_ids"] == ["e3"]
    assert then["correlation.alert_ids"] == [brute["alert.id"]]
    assert [shown["event.original"] for shown in then["events"]] == ["ok line"]


def test_member_alerts_of_rules_that_raise_their_own_are_named(tmp_path: Path) -> None:
    """A rule with ``generate: true`` raises its own alerts; the correlation lists their ids
    (the same ids the detector gave them), beside the event ids."""
    (tmp_path / "probe.yml").write_text(
        "title: probe\nid: 22222222-2222-4222-8222-222222222222\nname: probe\n"
        "logsource: {product: linux}\ndetection:\n  sel: {event.action: probe}\n  condition: sel\n"
    )
    (tmp_path / "scan.yml").write_text(
        "title: scan\nid: c1c1c1c1-0000-4000-8000-000000000001\ncorrelation:\n"
        "  type: event_count\n  rules: [probe]\n  group-by: [source.ip]\n  timespan: 1m\n"
        "  condition: {gte: 3}\n  generate: true\n"
    )
    from socpipe.detectors.detection import Detector

    detector = Detector(load_rules([tmp_path]))
    raised = []
    for number in range(3):
        probe = {"event.action": "probe", "event.module": "system"}
        raised.extend(detector.process(event(number, number, **probe)))
    probes = [alert.id for alert in raised if alert.rule.id != C1]
    [scan] = [alert.to_dict() for alert in raised if alert.rule.id == C1]
    assert len(probes) == 3
    assert scan["correlation.alert_ids"] == probes
    assert scan["correlation.event_ids"] == ["e0", "e1", "e2"]


def test_raw_lines_are_shown_up_to_the_configured_number_and_cut() -> None:
    rule = correlation(COUNT.replace("gte: 3", "gte: 5"))
    engine = CorrelationEngine([rule], evidence_lines=3)
    matches = [
        ("fail", event(n, n, **{"event.original": f"line {n} " + "x" * 5000})) for n in range(5)
    ]
    [alert] = feed(engine, matches)
    document = alert.to_dict()
    assert document["correlation.event_ids"] == [f"e{n}" for n in range(5)]
    shown = document["events"]
    assert [item["event.id"] for item in shown] == ["e0", "e1", "e2"]
    assert all(len(item["event.original"]) == 2048 for item in shown)
    assert shown[0]["event.original"].startswith("line 0 ")
    assert shown[0]["@timestamp"] == "2026-03-03T10:00:00.000Z"
    none = CorrelationEngine([rule], evidence_lines=0)
    [quiet] = feed(none, matches)
    assert quiet.to_dict()["events"] == []
