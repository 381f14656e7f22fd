"""The scan benchmark's table rows: best and slowest of runs taken in different rounds."""

from __future__ import annotations

from bench.scan import _row


def run(events: int, seconds: float, peak: float, load: float = 0.5) -> dict:
    return {
        "rules": 40,
        "events": events,
        "alerts": 7,
        "load_seconds": load,
        "scan_seconds": seconds,
        "peak_rss_mib": peak,
    }


def test_row_reports_the_best_rate_the_slowest_rate_and_the_highest_peak() -> None:
    runs = [run(1000, 0.02, 41, load=0.9), run(1000, 0.01, 39, load=0.2), run(1000, 0.04, 40)]
    assert _row("web", runs) == "| web | 40 | 1,000 | 100,000 | 25,000 | 0.2 | 41 | 7 |"
