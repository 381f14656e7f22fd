"""Detection state is capped in bytes, not only in entries (issue 20: a flood of huge values
kept within the entry caps could still exhaust memory), with a metric and one log line per
change of state."""

from __future__ import annotations

import gc
import json
import logging
import random
import sys
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest

from socpipe.core import metrics
from socpipe.detectors.alert import Alert
from socpipe.detectors.anomaly.behaviour import MAX_DISTINCT
from socpipe.detectors.anomaly.scorers import behaviour_windows
from socpipe.detectors.correlation import GROUP_BYTES, CorrelationEngine, _dict_bytes, _Group
from socpipe.detectors.incidents import STALE_EXPIRY_SLACK, IncidentTracker
from tests.test_correlation import correlation, event
from tests.test_incidents import FAILED, matched

SPRAY = """
correlation:
  type: value_count
  rules: [fail]
  group-by: [source.ip]
  timespan: 3600s
  condition: {gte: 1000000, field: user.name}
"""
WINDOWED = """
correlation:
  type: event_count
  rules: [fail]
  group-by: [source.ip]
  timespan: 60s
  condition: {lt: 3}
"""


def recount(engine: CorrelationEngine) -> int:
    """The engine's estimate made afresh from what its groups hold now."""
    groups: list[_Group] = list(engine._groups.values())
    return sum(
        GROUP_BYTES
        + sum(sys.getsizeof(value) for value in group.key)
        + _dict_bytes(group.entities)
        + sum(entry.size for entry in group.entries)
        for group in groups
    )


def test_huge_values_are_capped_in_bytes_with_one_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cap = 4 << 20
    engine = CorrelationEngine([correlation(SPRAY)], max_bytes=cap)
    caplog.set_level(logging.WARNING, "socpipe.detectors.correlation")
    big = "x" * (64 << 10)
    for number in range(400):  # 400 distinct 64 KiB user names: 25 MiB without the cap
        source = f"10.0.{number // 250}.{number % 250}"
        name = f"{number}{big}"
        engine.observe("fail", event(number, number, **{"source.ip": source, "user.name": name}))
        assert engine.state_bytes <= cap
    assert engine.stats.groups_evicted > 0
    assert engine.state_bytes == recount(engine) > cap // 2
    shedding = [r for r in caplog.records if "shedding" in r.getMessage()]
    assert len(shedding) == 1 and f"{cap:,} bytes" in shedding[0].getMessage()


def test_one_group_of_huge_values_does_not_stay_over_the_cap() -> None:
    cap = 1 << 20
    engine = CorrelationEngine([correlation(SPRAY)], max_bytes=cap)
    for number in range(40):  # one source, 40 names of 64 KiB
        engine.observe("fail", event(number, number, **{"user.name": f"{number}" + "y" * 65536}))
        assert engine.state_bytes <= cap


def test_bytes_are_accounted_through_windows_alerts_sweeps_and_flush(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every way entries leave a group (consumed by an alert, judged in a closed window,
    expired by a sweep, dropped by the per-group cap, evicted with their group) keeps the
    estimate equal to one made afresh."""
    monkeypatch.setattr("socpipe.detectors.correlation.SWEEP_EVERY", 5)
    rng = random.Random(7)
    rules = [
        correlation(f"id: {number}0000000-0000-4000-8000-000000000000\n{text}")
        for number, text in enumerate(
            [
                SPRAY.replace("1000000", "3"),  # fires and consumes
                WINDOWED,  # judged when its windows close
                # only expires, and hits the per-group cap
                WINDOWED.replace("lt: 3", "gte: 1000000").replace("60s", "30s"),
            ]
        )
    ]
    engine = CorrelationEngine(rules, lateness=5, max_entries_per_group=8, max_groups=45)
    for number in range(3000):
        source = {"source.ip": f"10.0.0.{rng.randint(1, 20)}", "user.name": f"u{rng.randint(1, 9)}"}
        engine.observe("fail", event(number // 2 + rng.randint(0, 4), number, **source))
        assert engine.state_bytes == recount(engine)
    stats = engine.stats
    assert stats.alerts and stats.entries_dropped and stats.groups_evicted
    engine.flush()
    assert engine.state_bytes == 0 and engine.stats.state_bytes == 0


def test_the_estimate_follows_real_memory() -> None:
    """Within a margin of what tracemalloc sees the state keep alive (events decoded from
    JSON, as the detect stage gets them)."""
    lines = [
        json.dumps(
            event(
                k,
                g * 100 + k,
                **{"source.ip": f"10.1.{g // 250}.{g % 250}", "user.name": f"user{k}-{g}"},
            )
            | {"event.id": f"{g * 100 + k:032x}"}
        )
        for g in range(1000)
        for k in range(10)
    ]
    engine = CorrelationEngine([correlation(SPRAY)])
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for line in lines:
        engine.observe("fail", json.loads(line))
    gc.collect()
    kept = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert 0.75 * kept <= engine.state_bytes <= 1.5 * kept


def window_event(second: int, source: str, **fields: Any) -> dict[str, Any]:
    return event(second, second, **{"source.ip": source, **fields})


def test_model_windows_are_capped_in_bytes_with_a_metric(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cap = 2 << 20
    windows = behaviour_windows("source.ip", 3600, max_bytes=cap, name="test-model")
    caplog.set_level(logging.WARNING, "socpipe.detectors.anomaly.windows")
    shed_before = metrics.ANOMALY_SHED.labels("test-model")._value.get()
    for number in range(5000):  # 5,000 sources, each with a 2 KiB user agent
        source = f"10.{number // 65536}.{number // 256 % 256}.{number % 256}"
        windows.observe(
            window_event(1, source, **{"user_agent.original": f"{number}" + "a" * 2048})
        )
        assert windows.state_bytes <= cap
    assert windows.shed > 0
    assert metrics.ANOMALY_SHED.labels("test-model")._value.get() == shed_before + windows.shed
    assert len([r for r in caplog.records if "shedding" in r.getMessage()]) == 1
    windows.flush()
    assert windows.state_bytes == 0
    assert metrics.ANOMALY_BYTES.labels("test-model")._value.get() == 0


def test_one_window_keeps_a_bounded_number_of_distinct_values() -> None:
    windows = behaviour_windows("source.ip", 3600)
    for number in range(MAX_DISTINCT + 500):
        windows.observe(window_event(number % 3000, "203.0.113.9", **{"url.path": f"/{number}"}))
    [window] = windows.flush()
    assert len(window.urls) == MAX_DISTINCT and window.events == MAX_DISTINCT + 500
    assert sum(window.hours.values()) == window.events


# --- incidents ---------------------------------------------------------------------------


def incident_alerts(incident: int, members: int) -> Iterator[Alert]:
    """Alerts of one incident (one source address), each naming a new user and destination:
    the largest an incident grows within its listing caps."""
    source = f"10.{incident // 62500}.{incident // 250 % 250}.{incident % 250}"
    for member in range(members):
        yield matched(
            FAILED,
            1 + member,
            incident * 1000 + member,
            **{
                "source.ip": source,
                "user.name": f"user{member}-{incident}",
                "destination.ip": f"10.9.{member}.{incident % 250}",
            },
        )


def recount_incidents(tracker: IncidentTracker) -> int:
    return sum(incident.size for incident in tracker._open.values())


def test_incidents_are_capped_in_bytes_with_one_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Within the count cap, alerts crafted to grow every incident to its listing caps are
    stopped by the bytes cap: the least recently changed incident is closed early, its last
    state handed on, not lost."""
    cap = 1 << 20
    tracker = IncidentTracker(max_bytes=cap)
    caplog.set_level(logging.WARNING, "socpipe.detectors.incidents")
    for incident in range(200):  # ~28 KB each: 5.6 MB without the cap
        for alert in incident_alerts(incident, 120):
            tracker.assign([alert])
            assert tracker.state_bytes <= cap
    assert tracker.stats.evicted > 0
    assert tracker.open_count + tracker.stats.evicted == 200
    assert tracker.state_bytes == recount_incidents(tracker) > cap // 2
    assert len(tracker.closed()) == tracker.stats.evicted
    [warning] = [r.getMessage() for r in caplog.records]
    assert f"{cap:,} estimated bytes" in warning and "stages.incident_max_bytes" in warning
    tracker.flush()
    assert tracker.state_bytes == 0


def test_closed_incidents_leave_the_estimate_with_their_links() -> None:
    """Links only ever lead to open incidents, so they go when their incident closes: a
    daemon's links no longer pile up towards their cap over hours (the soak showed it)."""
    tracker = IncidentTracker(window_secs=60, lateness_secs=0)
    for alert in incident_alerts(1, 5):
        tracker.assign([alert])
    assert tracker.state_bytes == recount_incidents(tracker) > 0
    assert tracker.link_count == 1 + 5 + 5  # its key, 5 events, 5 alerts
    # An alert of the same source a day later closes the first incident on its own time.
    tracker.assign([matched(FAILED, 86_400, 99_999, **{"source.ip": "10.0.0.1"})])
    assert tracker.open_count == 1
    assert tracker.state_bytes == recount_incidents(tracker)
    assert tracker.link_count == 3
    assert len(tracker.updates()) == 2  # the closed one's last state is still published


def test_the_links_of_other_incidents_stay_when_one_closes() -> None:
    tracker = IncidentTracker(window_secs=60, lateness_secs=0)
    first = matched(FAILED, 1, 1, **{"source.ip": "10.0.0.1"})
    tracker.assign([first])
    later = matched(FAILED, 200, 2, **{"source.ip": "10.0.0.1"})
    [later_incident] = tracker.assign([later])
    tracker.assign([matched(FAILED, 230, 3, **{"source.ip": "10.0.0.1"})])
    assert tracker.open_count == 1  # the first closed
    assert tracker._alerts.get(first.id) is None
    assert tracker._alerts.get(later.id) == later_incident


def test_the_incident_estimate_follows_real_memory() -> None:
    """Within a margin of what tracemalloc sees the tracker keep alive, links included, for
    small incidents and incidents at their listing caps."""
    for incidents, members in ((5000, 1), (100, 150)):
        tracker = IncidentTracker()
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for incident in range(incidents):
            for alert in incident_alerts(incident, members):
                tracker.assign([alert])
        del alert
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        assert 0.75 * kept <= tracker.state_bytes <= 1.5 * kept


def test_a_flood_of_evicted_incidents_leaves_no_expiry_entries_behind() -> None:
    """Incidents opened and closed early faster than their reach passes: the expiry heap
    holds the open ones (and a slack), not one entry per incident ever opened."""
    tracker = IncidentTracker(max_incidents=10)
    for number in range(10_000):
        source = f"10.{number // 62500}.{number // 250 % 250}.{number % 250}"
        tracker.assign([matched(FAILED, 1, number, **{"source.ip": source})])
    assert tracker.stats.evicted == 10_000 - 10
    assert len(tracker._expiry) <= 2 * 10 + STALE_EXPIRY_SLACK
    assert {identifier for _, identifier in tracker._expiry} >= set(tracker._open)
