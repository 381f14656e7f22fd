"""The Prometheus endpoint every process can serve."""

from __future__ import annotations

import socket
import urllib.request

from prometheus_client import REGISTRY

from daemon import metrics
from daemon.config import DEFAULT_CONFIG, load_config
from daemon.stages import DetectStage
from detectors.detection import Detector
from detectors.rules import DEFAULT_RULE_DIR, load_rules


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_metrics_endpoint_serves_the_pipeline_metrics() -> None:
    # The registry is process-wide: other tests in this process may have counted already.
    labels = {"stage": "index"}
    before = REGISTRY.get_sample_value("socpipe_deadletter_records_total", labels) or 0.0
    port = free_port()
    metrics.serve(port)
    metrics.ALERTS.labels("metrics-test-rule", "high").inc()
    metrics.DEADLETTERED.labels("index").inc(2)
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert 'socpipe_alerts_total{level="high",rule_id="metrics-test-rule"} 1.0' in body
    assert f'socpipe_deadletter_records_total{{stage="index"}} {before + 2}' in body
    for name in (
        "socpipe_stage_batch_seconds",
        "socpipe_consumer_lag_records",
        "socpipe_collector_buffered_bytes",
    ):
        assert f"# TYPE {name}" in body


def test_detect_stage_exports_what_correlation_left_out() -> None:
    detector = Detector(load_rules([DEFAULT_RULE_DIR]))
    stage = DetectStage(load_config(DEFAULT_CONFIG), None, detector)  # type: ignore[arg-type]
    labels = {"reason": "late"}
    before = REGISTRY.get_sample_value("socpipe_correlation_matches_left_out_total", labels) or 0
    detector.correlations.stats.late += 3
    stage._report_correlation_state()
    stage._report_correlation_state()  # reports the change once, not the running total again
    after = REGISTRY.get_sample_value("socpipe_correlation_matches_left_out_total", labels)
    assert after == before + 3
    assert REGISTRY.get_sample_value("socpipe_correlation_groups") == 0
