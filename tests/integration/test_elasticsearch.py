"""Elasticsearch layout and replay-safe writes, on the real server."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from socpipe.core.config import Config
from socpipe.pipeline import main
from socpipe.sinks.elasticsearch import Document, ElasticsearchSink, events_index, install_templates
from tests.integration.conftest import write_config


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
    # Events index each value once (no analysed `.text` copy of a keyword: an ingest cost);
    # alerts keep ECS's copies.
    assert mapping["message"]["type"] == "text"
    assert mapping["user"]["properties"]["name"] == {"type": "keyword", "ignore_above": 1024}
    alerts_mapping = es.indices.get_mapping(index=config.elasticsearch.alerts_index)
    user = alerts_mapping[config.elasticsearch.alerts_index]["mappings"]["properties"]["user"]
    assert user["properties"]["name"]["fields"]["text"]["type"] == "text"
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


def test_prune_deletes_expired_days_and_nothing_else(
    config: Config, es: Elasticsearch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prefix = config.elasticsearch.events_index_prefix
    today = datetime.now(UTC).date()
    expired = f"{prefix}{today - timedelta(days=40):%Y.%m.%d}"
    expired_closed = f"{prefix}{today - timedelta(days=41):%Y.%m.%d}"
    recent = f"{prefix}{today - timedelta(days=2):%Y.%m.%d}"
    wrong_clock = f"{prefix}2099.01.01"
    by_hand = f"{prefix}manual-copy"
    for name in (expired, expired_closed, recent, wrong_clock, by_hand):
        es.indices.create(index=name)
    es.indices.close(index=expired_closed)
    path = write_config(config, tmp_path / "socpipe.yml")

    assert main(["prune", "--keep-days", "30", "--dry-run", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"would delete {expired_closed}\nwould delete {expired}\n" in out
    assert es.indices.exists(index=expired) and es.indices.exists(index=expired_closed)

    assert main(["prune", "--keep-days", "30", "--config", str(path)]) == 0
    printed = capsys.readouterr()
    assert f"deleting {expired}" in printed.out
    assert f"left alone (not a daily index): {by_hand}" in printed.out
    assert wrong_clock in printed.err
    assert not es.indices.exists(index=expired)
    assert not es.indices.exists(index=expired_closed)
    for kept in (recent, wrong_clock, by_hand, config.elasticsearch.alerts_index):
        assert es.indices.exists(index=kept), kept


def test_outcomes_follow_their_documents_across_bulk_requests(
    config: Config, es: Elasticsearch
) -> None:
    # Two documents per request, three requests in flight: each outcome must land on its own
    # document, whichever request carried it and whichever answered first.
    settings = replace(config.elasticsearch, bulk_max_docs=2, bulk_concurrency=3)
    sink = ElasticsearchSink(es, settings)
    index = events_index(settings, "2026-03-03T10:00:00.000Z")

    def event(name: str, bad: bool = False) -> Document:
        body: dict = {"@timestamp": "2026-03-03T10:00:00.000Z", "event.original": name}
        if bad:
            body["host"] = {"name": {"nested": 1}}
        return Document.of(index, name, body)

    assert sink.write([event("present")]).created == 1
    batch = [
        event("a"),
        event("bad-1", bad=True),
        event("present"),
        event("b"),
        event("bad-2", bad=True),
        event("c"),
    ]
    result = sink.write(batch)
    assert (result.created, result.already_present) == (3, 1)
    assert [document.id for document, _ in result.rejected] == ["bad-1", "bad-2"]
    assert all("HTTP 400" in reason for _, reason in result.rejected)
    es.indices.refresh(index=index)
    assert es.count(index=index)["count"] == 4
    sink.close()
