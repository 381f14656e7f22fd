"""Elasticsearch layout and replay-safe writes, on the real server."""

from __future__ import annotations

from elasticsearch import Elasticsearch

from daemon.config import Config
from sinks.elasticsearch import Document, ElasticsearchSink, events_index, install_templates


def test_setup_is_idempotent_and_maps_ecs_types(config: Config, es: Elasticsearch) -> None:
    assert install_templates(es, config.elasticsearch) == install_templates(
        es, config.elasticsearch
    )
    sink = ElasticsearchSink(es, config.elasticsearch)
    index = events_index(config.elasticsearch, "2026-03-03T10:00:00.000Z")
    sink.write(
        [
            Document.of(
                index,
                "e1",
                {
                    "@timestamp": "2026-03-03T10:00:00.000Z",
                    "source.ip": "203.0.113.5",
                    "event.original": "raw",
                },
            )
        ]
    )
    mapping = es.indices.get_mapping(index=index)[index]["mappings"]["properties"]
    assert mapping["source"]["properties"]["ip"]["type"] == "ip"
    assert mapping["@timestamp"]["type"] == "date"
    assert mapping["event"]["properties"]["original"]["type"] == "keyword"
    assert mapping["event"]["properties"]["original"]["index"] is False
    assert es.indices.exists(index=config.elasticsearch.alerts_index)
    # Alerts become searchable sooner than events; an existing alerts index is brought up to
    # date by setup.
    alerts = config.elasticsearch.alerts_index
    es.indices.put_settings(index=alerts, settings={"index.refresh_interval": "1s"})
    install_templates(es, config.elasticsearch)
    settings = es.indices.get_settings(index=alerts)[alerts]["settings"]["index"]
    assert settings["refresh_interval"] == "500ms"
    assert (
        "refresh_interval" not in es.indices.get_settings(index=index)[index]["settings"]["index"]
    )


def test_replay_neither_duplicates_nor_overwrites_triage(config: Config, es: Elasticsearch) -> None:
    sink = ElasticsearchSink(es, config.elasticsearch)
    alert = Document.of(
        config.elasticsearch.alerts_index,
        "alert-1",
        {"@timestamp": "2026-03-03T10:00:00.000Z", "alert.id": "alert-1", "alert.status": "new"},
    )
    first = sink.write([alert])
    assert (first.created, first.already_present) == (1, 0)
    # The analyst takes the alert: a partial-document update (no scripts on this cluster).
    es.update(
        index=alert.index,
        id=alert.id,
        doc={"alert.status": "in_progress", "alert.assignee": "huongtt"},
        refresh=True,
    )
    replay = sink.write([alert])
    assert (replay.created, replay.already_present, replay.rejected) == (0, 1, [])
    stored = es.get(index=alert.index, id=alert.id)["_source"]
    assert stored["alert.status"] == "in_progress"
    assert stored["alert.assignee"] == "huongtt"
    assert es.count(index=alert.index)["count"] == 1


def test_malformed_values_are_kept_not_rejected(config: Config, es: Elasticsearch) -> None:
    sink = ElasticsearchSink(es, config.elasticsearch)
    index = events_index(config.elasticsearch, "2026-03-03T10:00:00.000Z")
    result = sink.write(
        [
            Document.of(
                index,
                "odd",
                {
                    "@timestamp": "2026-03-03T10:00:00.000Z",
                    "source.ip": "not-an-ip",
                    "event.original": "raw",
                },
            )
        ]
    )
    assert (result.created, result.rejected) == (1, [])
    assert es.get(index=index, id="odd")["_source"]["source.ip"] == "not-an-ip"
    es.indices.refresh(index=index)
    ignored = es.search(index=index, query={"term": {"_ignored": "source.ip"}})
    assert ignored["hits"]["total"]["value"] == 1


def test_documents_elasticsearch_refuses_are_returned_with_the_reason(
    config: Config, es: Elasticsearch
) -> None:
    sink = ElasticsearchSink(es, config.elasticsearch)
    index = events_index(config.elasticsearch, "2026-03-03T10:00:00.000Z")
    # An object where the mapping has a keyword cannot be ignored: the document is refused.
    result = sink.write(
        [
            Document.of(
                index,
                "bad",
                {"@timestamp": "2026-03-03T10:00:00.000Z", "host": {"name": {"nested": 1}}},
            )
        ]
    )
    assert result.created == 0
    assert len(result.rejected) == 1
    assert "HTTP 400" in result.rejected[0][1]
