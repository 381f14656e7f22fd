"""Training an anomaly model on history read back from the real Elasticsearch."""

from __future__ import annotations

import json
from pathlib import Path

from elasticsearch import Elasticsearch

from socpipe.collectors.elasticsearch_history import read_history
from socpipe.collectors.files import FileEventReader
from socpipe.collectors.parsers import ParseContext
from socpipe.core.config import Config
from socpipe.detectors.anomaly.artifact import ModelTrust, load_scorer
from socpipe.detectors.anomaly.scorers import BehaviourScorer
from socpipe.detectors.anomaly.training import train_behaviour
from socpipe.sinks.elasticsearch import Document, ElasticsearchSink, connect, events_index
from tests.behaviour_data import steady_traffic, write


def test_behaviour_model_trains_from_indexed_history(
    config: Config, es: Elasticsearch, tmp_path: Path
) -> None:
    log = write(tmp_path / "access.log", steady_traffic(0, 3, seed=1))
    events = list(FileEventReader(ParseContext(agency_id="so-tttt")).read([log]))
    settings = config.elasticsearch
    sink = ElasticsearchSink(connect(settings), settings, lambda: False)
    result = sink.write(
        [
            Document.of(events_index(settings, event["@timestamp"]), event["event.id"], event)
            for event in events
        ]
    )
    assert result.created == len(events)
    es.indices.refresh(index=f"{settings.events_index_prefix}*")

    pattern = f"{settings.events_index_prefix}*"
    history = list(read_history(es, pattern, page_size=500))
    assert len(history) == len(events)
    stamps = [event["@timestamp"] for event in history]
    assert stamps == sorted(stamps)
    one_day = list(read_history(es, pattern, "2026-03-03T00:00:00Z", "2026-03-04T00:00:00Z"))
    assert {event["@timestamp"][:10] for event in one_day} == {"2026-03-03"}

    model = tmp_path / "model"
    manifest = train_behaviour(
        read_history(es, pattern), model, "web", "source.ip", 3600, [f"elasticsearch:{pattern}"]
    )
    assert manifest["training"]["events"] == len(events)
    assert json.loads((model / "manifest.json").read_text())["training"]["sources"] == [
        f"elasticsearch:{pattern}"
    ]
    scorer = load_scorer(model, ModelTrust(model.parent))
    assert isinstance(scorer, BehaviourScorer) and scorer.entity_field == "source.ip"
