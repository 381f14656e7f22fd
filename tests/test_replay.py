"""Rebuilding detect-stage state from history (daemon/replay.py, Detector.replay): the pure
parts. The re-read itself runs against the real Kafka in tests/integration/test_restart_state.py.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from kafka.structs import OffsetAndMetadata, TopicPartition

from socpipe.collectors.parsers import ParseContext, parse_detected
from socpipe.daemon.replay import ReplayRange, anchor_ms, commit_metadata, replay_range
from socpipe.detectors.correlation import CorrelationEngine
from socpipe.detectors.detection import Detector
from socpipe.detectors.rules import load_rules
from tests.conftest import REPO

PARTITION = TopicPartition("soc.events", 3)
CONTEXT = ParseContext(agency_id="so-tttt", reference_time=datetime(2026, 3, 10, tzinfo=UTC))
BRUTE_FORCE = "SSH Brute Force From One Source"


@pytest.mark.parametrize(
    ("committed", "first_in_horizon", "held_until", "expected"),
    [
        (None, 0, None, None),  # never committed: read from the start anyway
        (500, None, None, None),  # nothing in the horizon
        (500, 500, None, None),  # the horizon holds only records after the commit
        (500, 120, None, (120, 500)),
        (500, 120, 450, (450, 500)),  # held before a rebalance: only the gap is new
        (500, 120, 30, (120, 500)),  # held long ago: the horizon decides
        (500, 120, 500, None),  # held up to the commit: the state is current
    ],
)
def test_replay_range(
    committed: int | None,
    first_in_horizon: int | None,
    held_until: int | None,
    expected: tuple[int, int] | None,
) -> None:
    plan = replay_range(PARTITION, committed, first_in_horizon, held_until)
    if expected is None:
        assert plan is None
    else:
        assert plan == ReplayRange(PARTITION, *expected)
        assert plan.records == expected[1] - expected[0]


def test_commit_metadata_gives_the_anchor_back_and_falls_back_to_now() -> None:
    stamped = OffsetAndMetadata(10, commit_metadata(1_764_400_000_123), -1)
    assert anchor_ms(stamped, now_ms=5) == 1_764_400_000_123
    for metadata in ("", None, "written by another tool", "last_record_ms=soon"):
        assert anchor_ms(OffsetAndMetadata(10, metadata, -1), now_ms=5) == 5


def test_horizon_is_the_longest_timespan_plus_lateness() -> None:
    report = load_rules([REPO / "rules"])
    engine = CorrelationEngine(report.correlations, lateness=120)
    longest = max(rule.timespan for rule in report.correlations)
    assert engine.horizon_secs == longest + 120
    assert CorrelationEngine([], lateness=120).horizon_secs == 0


def failed_login(second: int) -> dict:
    line = (
        f"Mar  3 11:00:{second:02d} web01 sshd[2400]: Failed password for oracle from"
        f" 203.0.113.66 port {41000 + second} ssh2"
    )
    event, _ = parse_detected(line, CONTEXT)
    event["event.id"] = f"failure-{second}"
    return event


def test_replayed_events_fill_windows_and_raise_nothing() -> None:
    detector = Detector(load_rules([REPO / "rules"]))
    root_login, _ = parse_detected(
        "Mar  3 11:00:30 web02 sshd[7]: Accepted password for root from 198.51.100.9 port 1 ssh2",
        CONTEXT,
    )
    assert detector.process(dict(root_login)), "the root login raises an alert when live"
    replaying = Detector(load_rules([REPO / "rules"]))
    replaying.replay(root_login)
    for second in range(6):
        replaying.replay(failed_login(second))
    # Live again, the batch that was in flight at the crash comes once more (failures 4 and 5),
    # then new events: the brute force counts each failure once.
    alerts = [alert for second in range(4, 10) for alert in replaying.process(failed_login(second))]
    assert [alert.rule.title for alert in alerts] == [BRUTE_FORCE]
    assert alerts[0].to_dict()["correlation.event_ids"] == [f"failure-{n}" for n in range(10)]
