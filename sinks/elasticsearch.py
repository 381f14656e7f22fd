"""Elasticsearch: index templates, and bulk writes that are safe to replay.

Every document is written with ``create`` and a deterministic ``_id``: a replay after a crash
gets 409 for what was already written (counted as success), so nothing is duplicated and the
triage state an analyst set on an alert is never overwritten. Transient failures (429, 5xx,
no connection) are retried with backoff; any other per-document failure is returned to the
caller with its reason, to be dead-lettered, never swallowed.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from elasticsearch import ApiError, Elasticsearch, TransportError, helpers
from elasticsearch.serializer import JsonSerializer, OrjsonSerializer

from socpipe.core import envelope, metrics
from socpipe.core.config import ElasticsearchConfig, secret_from_env
from socpipe.core.resources import templates_dir

log = logging.getLogger(__name__)

TRANSIENT_STATUSES = {429, 500, 502, 503, 504}


@dataclass(frozen=True)
class Document:
    index: str
    id: str
    #: The document's JSON as it travelled through Kafka.
    source: bytes

    @classmethod
    def of(cls, index: str, id: str, body: dict[str, Any]) -> Document:
        return cls(index, id, envelope.encode(body))


@dataclass
class WriteResult:
    created: int = 0
    already_present: int = 0
    rejected: list[tuple[Document, str]] = field(default_factory=list)


class _FastJson(OrjsonSerializer):
    """orjson for requests and responses (the bulk helper encodes one action line per
    document: with the standard library that was a tenth of the daemon's time); the standard
    library for what orjson refuses, lone surrogates above all."""

    def json_dumps(self, data: Any) -> bytes:
        try:
            return super().json_dumps(data)
        except TypeError:
            return JsonSerializer.json_dumps(self, data)


def connect(config: ElasticsearchConfig) -> Elasticsearch:
    options: dict[str, Any] = {"request_timeout": 30, "serializer": _FastJson()}
    if config.api_key_env:
        options["api_key"] = secret_from_env(config.api_key_env)
    if config.ca_certs:
        options["ca_certs"] = config.ca_certs
    return Elasticsearch(config.hosts, **options)


def events_index(config: ElasticsearchConfig, timestamp: str) -> str:
    """The daily index of an event: ``soc-events-2026.03.03`` for any time that day (UTC)."""
    return f"{config.events_index_prefix}{timestamp[:10].replace('-', '.')}"


#: Settings of the alerts template that an existing alerts index is brought up to date with.
ALERTS_DYNAMIC_SETTINGS = ("index.refresh_interval",)


def install_templates(
    client: Elasticsearch, config: ElasticsearchConfig, template_dir: Path | None = None
) -> list[str]:
    """Put the composable templates and create the alerts index; safe to run any number of times."""
    # Template file -> (template name, index pattern), following the configured index names.
    targets = {
        "soc-events": (f"{config.events_index_prefix}template", f"{config.events_index_prefix}*"),
        "soc-alerts": (f"{config.alerts_index}-template", f"{config.alerts_index}*"),
    }
    folder = template_dir or templates_dir()
    installed = []
    bodies = {}
    for kind, (name, pattern) in targets.items():
        body = json.loads((folder / f"{kind}.template.json").read_text(encoding="utf-8"))
        body["index_patterns"] = [pattern]
        client.indices.put_index_template(name=name, **body)
        installed.append(name)
        bodies[kind] = body
    if not client.indices.exists(index=config.alerts_index):
        try:
            client.indices.create(index=config.alerts_index)
        except ApiError as error:
            if error.meta.status != 400 or "resource_already_exists" not in str(error):
                raise
    # The one alerts index outlives template changes: its dynamic settings follow them.
    settings = bodies["soc-alerts"]["template"]["settings"]
    dynamic = {name: settings[name] for name in ALERTS_DYNAMIC_SETTINGS if name in settings}
    if dynamic:
        client.indices.put_settings(index=config.alerts_index, settings=dynamic)
    return installed


class ElasticsearchSink:
    """Bulk writer used by the index stage."""

    def __init__(
        self,
        client: Elasticsearch,
        config: ElasticsearchConfig,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.client = client
        self.config = config
        self.should_stop = should_stop

    def write(self, documents: Iterable[Document]) -> WriteResult:
        """Write every document; returns only when each is written, present, or rejected.

        Raises ``InterruptedError`` if asked to stop while the cluster is unreachable: the
        caller then must not commit its input offsets.
        """
        pending = list(documents)
        result = WriteResult()
        delay = 0.5
        while pending:
            retry: list[Document] = []
            try:
                for document, outcome in zip(pending, self._bulk(pending), strict=True):
                    status, reason = outcome
                    if status in (200, 201):
                        result.created += 1
                    elif status == 409:
                        result.already_present += 1
                    elif status in TRANSIENT_STATUSES:
                        retry.append(document)
                    else:
                        result.rejected.append((document, f"HTTP {status}: {reason}"))
            except (TransportError, ApiError) as error:
                log.warning(
                    "elasticsearch bulk failed, will retry docs=%d reason=%s", len(pending), error
                )
                retry = pending
            pending = retry
            if pending:
                metrics.ES_RETRIED.inc(len(pending))
                if self.should_stop():
                    raise InterruptedError("stopping while Elasticsearch is unavailable")
                time.sleep(delay)
                delay = min(delay * 2, self.config.retry_max_secs)
        return result

    def _bulk(self, documents: list[Document]) -> list[tuple[int, str]]:
        actions = (
            {"_op_type": "create", "_index": doc.index, "_id": doc.id, "_source": doc.source}
            for doc in documents
        )
        outcomes = []
        # Several bulk requests in flight: Elasticsearch indexes them on separate threads
        # while this process waits, instead of one core indexing while the other idles.
        # Results come back in request order; 429s are retried by write()'s loop.
        for _ok, item in helpers.parallel_bulk(
            self.client,
            actions,
            thread_count=self.config.bulk_concurrency,
            chunk_size=self.config.bulk_max_docs,
            raise_on_error=False,
            raise_on_exception=True,
        ):
            detail = item["create"]
            error = detail.get("error")
            reason = (
                f"{error.get('type')}: {error.get('reason')}"
                if isinstance(error, dict)
                else str(error or "")
            )
            outcomes.append((int(detail.get("status", 0)), reason))
        return outcomes
