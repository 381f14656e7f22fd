import math

from socpipe.detectors.sweep import SweepSchedule


def calls_until_due(schedule: SweepSchedule, held: int) -> int:
    for count in range(1, 100_000):
        if schedule.due(held):
            return count
    raise AssertionError("never due")


def test_waits_for_the_minimum_when_state_is_small() -> None:
    schedule = SweepSchedule(minimum_events=10, interval_seconds=3600)
    assert calls_until_due(schedule, held=3) == 10
    assert calls_until_due(schedule, held=3) == 10


def test_waits_for_as_many_events_as_keys_when_state_is_large() -> None:
    schedule = SweepSchedule(minimum_events=10, interval_seconds=3600)
    assert calls_until_due(schedule, held=5000) == 5000


def test_elapsed_interval_makes_it_due_early() -> None:
    schedule = SweepSchedule(minimum_events=10, interval_seconds=0)
    assert calls_until_due(schedule, held=5000) == 64


def test_an_infinite_interval_sweeps_on_the_count_of_events_alone() -> None:
    # A scan's windows are judged by events alone, wherever the clock is (its output must not
    # depend on how fast it ran); an interval of 0 would sweep at the first clock reading.
    assert calls_until_due(SweepSchedule(minimum_events=100, interval_seconds=math.inf), 5) == 100
    assert calls_until_due(SweepSchedule(minimum_events=100, interval_seconds=0), 5) == 64
