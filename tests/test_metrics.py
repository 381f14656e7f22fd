"""The Prometheus endpoint every process can serve."""

from __future__ import annotations

import json
import socket
import urllib.request
from types import SimpleNamespace

from prometheus_client import REGISTRY

from socpipe.core import envelope, metrics
from socpipe.core.config import load_config
from socpipe.core.resources import bundled_rules_dir
from socpipe.daemon.stages import DetectStage
from socpipe.detectors.detection import Detector
from socpipe.detectors.rules import load_rules


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
    detector = Detector(load_rules([bundled_rules_dir()]))
    stage = DetectStage(load_config(), None, detector)  # type: ignore[arg-type]
    labels = {"reason": "late"}
    before = REGISTRY.get_sample_value("socpipe_correlation_matches_left_out_total", labels) or 0
    detector.correlations.stats.late += 3
    stage._report_correlation_state()
    stage._report_correlation_state()  # reports the change once, not the running total again
    after = REGISTRY.get_sample_value("socpipe_correlation_matches_left_out_total", labels)
    assert after == before + 3
    assert REGISTRY.get_sample_value("socpipe_correlation_groups") == 0


class RecordingProducer:
    """Stands in for Kafka's producer in a unit test of the stage's own logic."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes]] = []

    def send(self, topic: str, key: bytes | None, value: bytes) -> SimpleNamespace:
        self.sent.append((topic, key, value))
        return SimpleNamespace(get=lambda: None)

    def flush(self) -> None:
        pass


def test_detect_stage_counts_the_events_of_an_envelope_and_dead_letters_one_line() -> None:
    config = load_config()
    producer = RecordingProducer()
    stage = DetectStage(config, producer, Detector(load_rules([bundled_rules_dir()])))  # type: ignore[arg-type]
    root_login = {
        "@timestamp": "2026-03-03T10:00:00.000Z",
        "event.id": "e-root",
        "organization.id": "so-tttt",
        "host.name": "web01",
        "event.original": "Accepted password for root from 203.0.113.5 port 22 ssh2",
    }
    value = b"\n".join(
        [envelope.encode({"event.id": "e-quiet"}), b"{broken", envelope.encode(root_login)]
    )
    record = SimpleNamespace(topic="soc.events", partition=0, offset=7, key=b"k", value=value)
    labels = {"stage": "detect"}
    before = REGISTRY.get_sample_value("socpipe_stage_events_in_total", labels) or 0
    stage.process([record])  # type: ignore[list-item]
    assert REGISTRY.get_sample_value("socpipe_stage_events_in_total", labels) == before + 3
    [dead] = [
        json.loads(value)
        for topic, _, value in producer.sent
        if topic == config.kafka.topics.deadletter
    ]
    assert (dead["offset"], dead["position"], dead["record"]) == (7, 1, "{broken")
    assert "not JSON" in dead["reason"]
