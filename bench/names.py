"""A configuration whose Kafka topics, consumer groups and Elasticsearch indices carry one
run's own tag, so that benchmarks and integration tests share the services without meeting
each other's data, and their leftovers are found (and deleted) by that tag."""

from __future__ import annotations

from dataclasses import replace

from socpipe.core.config import Config, TopicsConfig


def isolated(base: Config, tag: str, poll_timeout_ms: int | None = None) -> Config:
    """``base`` with every topic, group and index name starting with ``tag``."""
    stages = replace(base.stages, detect_group=f"{tag}-detect", index_group=f"{tag}-index")
    if poll_timeout_ms is not None:
        stages = replace(stages, poll_timeout_ms=poll_timeout_ms)
    return replace(
        base,
        kafka=replace(
            base.kafka,
            topics=TopicsConfig(
                events=f"{tag}.events",
                alerts=f"{tag}.alerts",
                deadletter=f"{tag}.deadletter",
                incidents=f"{tag}.incidents",
                forwarding=f"{tag}.forwarding",
            ),
        ),
        elasticsearch=replace(
            base.elasticsearch,
            events_index_prefix=f"{tag}-events-",
            alerts_index=f"{tag}-alerts",
            incidents_index=f"{tag}-incidents",
            forwarding_index=f"{tag}-forwarding",
            console_index_prefix=f"{tag}-console-",
        ),
        stages=stages,
    )
