"""Prometheus metrics of every socpipe process (low-cardinality labels only)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

RECORDS_IN = Counter("socpipe_stage_records_in_total", "Records consumed by a stage", ["stage"])
EVENTS_IN = Counter(
    "socpipe_stage_events_in_total",
    "Events or alerts consumed by a stage (an events record holds up to 100)",
    ["stage"],
)
RECORDS_OUT = Counter("socpipe_stage_records_out_total", "Records written by a stage", ["stage"])
DEADLETTERED = Counter(
    "socpipe_deadletter_records_total", "Records sent to the dead-letter topic", ["stage"]
)
# One series per loaded rule at most: bounded by the rule set, not by the traffic.
ALERTS = Counter("socpipe_alerts_total", "Alerts raised", ["rule_id", "level"])
BATCH_SECONDS = Histogram(
    "socpipe_stage_batch_seconds", "Time to process and commit one batch", ["stage"]
)
ES_REJECTED = Counter("socpipe_elasticsearch_rejected_total", "Documents Elasticsearch refused")
ES_RETRIED = Counter(
    "socpipe_elasticsearch_retried_total",
    "Documents whose write is retried (Elasticsearch unreachable, overloaded or failing)",
)
ES_DUPLICATES = Counter(
    "socpipe_elasticsearch_already_present_total", "Documents already indexed (replays)"
)
COLLECTED = Counter("socpipe_collector_records_total", "Records read by a collector", ["collector"])
UNPARSED = Counter(
    "socpipe_collector_unparsed_total",
    "Records no parser understood (kept as generic events)",
    ["collector"],
)
BUFFERED_BYTES = Gauge(
    "socpipe_collector_buffered_bytes", "Bytes journaled on disk awaiting Kafka", ["collector"]
)
FOLLOWER_RETRIES = Counter(
    "socpipe_collector_kafka_failures_total", "Batches a collector had to retry", ["collector"]
)
KAFKA_REACHABLE = Gauge(
    "socpipe_collector_kafka_up",
    "1 while a collector's last Kafka send was acknowledged, 0 while Kafka is away",
    ["collector"],
)
TRUNCATED = Counter(
    "socpipe_collector_truncated_total",
    "Lines or messages longer than the cap (head kept, tagged socpipe_truncated)",
    ["collector"],
)
TIMESTAMPS_CLAMPED = Counter(
    "socpipe_collector_timestamps_clamped_total",
    "Events whose content time was outside the window around their receipt, set to the receipt",
    ["collector", "direction"],  # future | past
)
DROPPED = Counter(
    "socpipe_collector_dropped_total",
    "Messages a collector could not keep (UDP datagrams while the journal was unavailable)",
    ["collector", "reason"],
)
JOURNAL_ERRORS = Counter(
    "socpipe_collector_journal_errors_total",
    "Appends to the on-disk journal that failed (disk full, I/O error); the message is kept",
    ["collector"],
)
JOURNAL_SKIPPED_BYTES = Counter(
    "socpipe_collector_journal_skipped_bytes_total",
    "Bytes of damaged journal records skipped (a torn write after a crash)",
    ["collector"],
)
CONNECTIONS = Gauge("socpipe_syslog_connections", "Open syslog connections", ["listener"])
CONNECTIONS_REFUSED = Counter(
    "socpipe_syslog_connections_refused_total",
    "Syslog connections closed at once because a cap was reached",
    ["listener", "reason"],  # max_connections | max_connections_per_peer
)
CONNECTIONS_CLOSED = Counter(
    "socpipe_syslog_connections_closed_total",
    "Syslog connections the listener closed, by reason",
    ["listener", "reason"],  # idle | tls_handshake_timeout | tls_handshake_failed | error
)
CORRELATION_GROUPS = Gauge("socpipe_correlation_groups", "Correlation groups held in memory")
CORRELATION_BYTES = Gauge(
    "socpipe_correlation_state_bytes",
    "Estimated bytes of correlation state (capped by stages.correlation_max_bytes)",
)
ANOMALY_BYTES = Gauge(
    "socpipe_anomaly_state_bytes",
    "Estimated bytes of an anomaly model's open windows (capped by stages.anomaly_max_bytes)",
    ["model"],
)
ANOMALY_SHED = Counter(
    "socpipe_anomaly_windows_shed_total",
    "Open windows an anomaly model dropped unscored to stay under its memory cap",
    ["model"],
)
AGENCY_MISMATCH = Counter(
    "socpipe_agency_mismatch_total",
    "Events whose organization.id differed from the agency of their topic (overwritten)",
    ["stage"],
)
CORRELATION_LOST = Counter(
    "socpipe_correlation_matches_left_out_total",
    "Rule matches a correlation could not use (late, future, no group-by field, evicted)",
    ["reason"],
)
FORWARDED = Counter(
    "socpipe_forward_alerts_total",
    "Alerts handled by a forward destination, by outcome",
    ["destination", "outcome"],  # sent | retried | failed | deadlettered | skipped
)
FORWARD_LAST_SUCCESS = Gauge(
    "socpipe_forward_last_success_timestamp_seconds",
    "When a destination last took an alert",
    ["destination"],
)
FORWARD_LAST_FAILURE = Gauge(
    "socpipe_forward_last_failure_timestamp_seconds",
    "When a destination last failed",
    ["destination"],
)
FORWARD_BREAKER_OPEN = Gauge(
    "socpipe_forward_circuit_open",
    "1 while a destination's circuit breaker is open",
    ["destination"],
)
INCIDENTS_OPEN = Gauge("socpipe_incidents_open", "Incidents held in the detect stage's memory")
INCIDENT_BYTES = Gauge(
    "socpipe_incident_state_bytes",
    "Estimated bytes of open incidents (capped by stages.incident_max_bytes)",
)
INCIDENT_LINKS = Gauge(
    "socpipe_incident_links",
    "Evidence links (key, event or alert id -> incident) held in the detect stage's memory",
)
INCIDENT_UPDATES = Counter(
    "socpipe_incident_updates_total", "Incident updates published by the detect stage"
)
REPLAYED = Counter(
    "socpipe_stage_replayed_events_total",
    "Events re-read to rebuild correlation and model state after a restart or rebalance",
    ["stage"],
)
SUPPRESSED = Counter(
    "socpipe_alerts_suppressed_total",
    "Alerts an analyst's suppression held back (counted per suppression in Elasticsearch)",
    ["rule_id"],
)
SUPPRESSIONS_ACTIVE = Gauge(
    "socpipe_suppressions_loaded", "Suppressions the detect stage last loaded"
)
CONSUMER_LAG = Gauge("socpipe_consumer_lag_records", "Records not yet consumed", ["stage"])
BATCHES_RETRIED = Counter(
    "socpipe_stage_batches_retried_total",
    "Batches handed back uncommitted to be processed again (output unavailable, or a failure)",
    ["stage"],
)
INDICATORS = Gauge("socpipe_indicators", "Indicators the detect stage currently matches against")


def serve(port: int) -> None:
    """Expose /metrics on 127.0.0.1:port (0 disables it)."""
    if port:
        start_http_server(port, addr="127.0.0.1")
