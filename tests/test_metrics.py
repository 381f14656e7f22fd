"""The Prometheus endpoint every process can serve."""

from __future__ import annotations

import socket
import urllib.request

from prometheus_client import REGISTRY

from daemon import metrics


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
