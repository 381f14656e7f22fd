"""socpipe scaled out on a real cluster (``scripts/services.sh up --cluster``: three Kafka
brokers, two Elasticsearch nodes), losing a broker, a search node and a detect process in turn
under load: every event is indexed exactly once, and the alerts are exactly those the same
lines raise in one process, a brute force whose attempts straddle the loss of the process
holding them (and the correlation built on it) included.

Run by ``make test-cluster`` (bench/cluster.py has the scenario and times it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.cluster import ClusterUnavailable, cluster_config, run_config, run_scenario

pytestmark = pytest.mark.cluster

LINES = 12_000
RATE = 120.0


def test_faults_under_load_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    try:
        config = run_config(cluster_config())
    except ClusterUnavailable as error:
        pytest.fail(str(error))
    report = run_scenario(config, tmp_path, LINES, RATE, timeout=900)
    assert [phase.name.split()[0] for phase in report.phases] == ["Kafka", "Elasticsearch", "the"]
    assert all(phase.back_at is not None for phase in report.phases[:2]), report.phases
    # Every line is one event, indexed once under its own id.
    assert len(report.expected_ids) > LINES
    missing = report.expected_ids - report.indexed_ids
    unexpected = report.indexed_ids - report.expected_ids
    assert not missing and not unexpected, (len(missing), len(unexpected))
    assert report.indexed_documents == len(report.expected_ids)
    # Every alert one process raises, once; nothing else.
    missing = report.expected_alert_ids - report.alert_ids
    unexpected = report.alert_ids - report.expected_alert_ids
    assert not missing and not unexpected, (len(missing), len(unexpected))
    assert report.alert_documents == len(report.expected_alert_ids)
    assert report.correlation_titles >= {
        "SSH Brute Force From One Source",
        "SSH Brute Force Followed By A Successful Login",
    }
