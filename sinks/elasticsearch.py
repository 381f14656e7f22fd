"""Elasticsearch: index templates, and bulk writes that are safe to replay.

Events, alerts and ledger records are written with ``create`` and a deterministic ``_id``: a
replay after a crash gets 409 for what was already written (counted as success), so nothing
is duplicated and the triage state an analyst set on an alert is never overwritten.

Incidents grow, so an incident update is merged into the stored document
(:meth:`ElasticsearchSink.merge_incidents`, rules in socpipe.sinks.incidents): read, merged in
this process, and written as a partial update of the pipeline's changed fields only, guarded
by the document's sequence number (a concurrent write makes it read and merge again). The
merge only moves forward, so an update applied twice, or an old one after a newer one (a
replay), changes nothing; the analysts' fields (``incident.status``, assignee, notes...) are
set at creation and never written by the pipeline after. No Elasticsearch scripting is
needed, so this works on clusters without Painless.

Transient failures (429, 5xx, no connection) are retried with backoff; any other
per-document failure is returned to the caller with its reason, to be dead-lettered, never
swallowed.
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
from socpipe.sinks import incidents

log = logging.getLogger(__name__)

TRANSIENT_STATUSES = {429, 500, 502, 503, 504}


@dataclass(frozen=True)
class Document:
    index: str
    id: str
    #: The document's JSON as it travelled through Kafka.
    source: bytes
    #: For a partial update instead of a create: the fields to write, and the sequence
    #: number and primary term the stored document must still have.
    update: dict[str, Any] | None = None
    guard: tuple[int, int] | None = None

    @classmethod
    def of(cls, index: str, id: str, body: dict[str, Any]) -> Document:
        return cls(index, id, envelope.encode(body))


@dataclass
class WriteResult:
    created: int = 0
    already_present: int = 0
    rejected: list[tuple[Document, str]] = field(default_factory=list)


@dataclass
class MergeResult:
    """What merging a batch of incident updates did, per incident."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    #: (incident id, reason) for incidents Elasticsearch refused.
    rejected: list[tuple[str, str]] = field(default_factory=list)


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


#: Settings of a template that its existing single index is brought up to date with.
ALERTS_DYNAMIC_SETTINGS = ("index.refresh_interval",)


#: The console's own indices (users, sessions, audit, suppressions), named
#: ``<console_index_prefix><kind>``; each has its template in config/elasticsearch/.
CONSOLE_INDEX_KINDS = ("users", "sessions", "audit", "suppressions")


def console_index(config: ElasticsearchConfig, kind: str) -> str:
    """The name of one of the console's indices (``soc-console-users``...)."""
    if kind not in CONSOLE_INDEX_KINDS:
        raise ValueError(f"unknown console index {kind!r}")
    return f"{config.console_index_prefix}{kind}"


def install_templates(
    client: Elasticsearch, config: ElasticsearchConfig, template_dir: Path | None = None
) -> list[str]:
    """Put the composable templates and create the single indices (alerts, incidents,
    forwarding ledger) and the console's; safe to run any number of times."""
    # Template file -> (template name, index pattern), following the configured index names.
    single = {
        "soc-alerts": config.alerts_index,
        "soc-incidents": config.incidents_index,
        "soc-forwarding": config.forwarding_index,
    }
    targets = {
        "soc-events": (f"{config.events_index_prefix}template", f"{config.events_index_prefix}*"),
        **{kind: (f"{index}-template", f"{index}*") for kind, index in single.items()},
    }
    folder = template_dir or templates_dir()
    for kind in CONSOLE_INDEX_KINDS:
        index = console_index(config, kind)
        targets[f"soc-console-{kind}"] = (f"{index}-template", index)
    installed = []
    bodies = {}
    for kind, (name, pattern) in targets.items():
        body = json.loads((folder / f"{kind}.template.json").read_text(encoding="utf-8"))
        body["index_patterns"] = [pattern]
        client.indices.put_index_template(name=name, **body)
        installed.append(name)
        bodies[kind] = body
    for index in (*single.values(), *(console_index(config, k) for k in CONSOLE_INDEX_KINDS)):
        _create_index(client, index)
    # A single index outlives template changes: its dynamic settings follow them, and the
    # alerts index takes new alert.* and incident.* fields (a type is never changed in place).
    for kind, index in single.items():
        settings = bodies[kind]["template"]["settings"]
        dynamic = {name: settings[name] for name in ALERTS_DYNAMIC_SETTINGS if name in settings}
        if dynamic:
            client.indices.put_settings(index=index, settings=dynamic)
    properties = bodies["soc-alerts"]["template"]["mappings"]["properties"]
    client.indices.put_mapping(
        index=config.alerts_index,
        properties={name: properties[name] for name in ("alert", "incident")},
    )
    return installed


def _create_index(client: Elasticsearch, index: str) -> None:
    if client.indices.exists(index=index):
        return
    try:
        client.indices.create(index=index)
    except ApiError as error:
        if error.meta.status != 400 or "resource_already_exists" not in str(error):
            raise


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
                    status, reason, effect = outcome
                    if effect == "noop":
                        result.already_present += 1  # an incident update with nothing new
                    elif status in (200, 201):
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

    def merge_incidents(self, index: str, updates: Iterable[dict[str, Any]]) -> MergeResult:
        """Merge incident updates into their stored documents (module docstring); returns
        once each is written, unchanged, or refused. Raises ``InterruptedError`` if asked to
        stop while the cluster is unreachable, and ``KeyError`` for an update without its
        id, level or count."""
        pending = incidents.fold(updates)
        result = MergeResult()
        delay = 0.5
        while pending:
            retry: dict[str, dict[str, Any]] = {}
            try:
                stored = self._fetch(index, list(pending))
                writes: list[Document] = []
                for identifier, update in pending.items():
                    current = stored.get(identifier)
                    if current is None:
                        body = {**update, **incidents.TRIAGE_DEFAULTS}
                        writes.append(Document.of(index, identifier, body))
                        continue
                    source, guard = current
                    if changed := incidents.changes(source, update):
                        writes.append(Document(index, identifier, b"", changed, guard))
                    else:
                        result.unchanged += 1
                outcomes = self._bulk(writes) if writes else []
            except (TransportError, ApiError) as error:
                log.warning("elasticsearch incident merge failed, will retry: %s", error)
                retry = pending
            else:
                for document, (status, reason, _) in zip(writes, outcomes, strict=True):
                    if status in (200, 201):
                        if document.update is None:
                            result.created += 1
                        else:
                            result.updated += 1
                    elif status == 409 or status in TRANSIENT_STATUSES:
                        # Written meanwhile (another process, an analyst): read and merge again.
                        retry[document.id] = pending[document.id]
                    else:
                        result.rejected.append((document.id, f"HTTP {status}: {reason}"))
            pending = retry
            if pending:
                if self.should_stop():
                    raise InterruptedError("stopping while incidents could not be written")
                time.sleep(delay)
                delay = min(delay * 2, self.config.retry_max_secs)
        return result

    def _fetch(
        self, index: str, identifiers: list[str]
    ) -> dict[str, tuple[dict[str, Any], tuple[int, int]]]:
        """Stored documents with their sequence number and primary term."""
        response = self.client.mget(index=index, ids=identifiers)
        found = {}
        for item in response["docs"]:
            if item.get("found"):
                guard = (int(item["_seq_no"]), int(item["_primary_term"]))
                found[str(item["_id"])] = (dict(item["_source"]), guard)
            elif "error" in item and "index_not_found" not in str(item["error"]):
                raise ApiError(str(item["error"]), meta=response.meta, body=item)
        return found

    def _bulk(self, documents: list[Document]) -> list[tuple[int, str, str]]:
        actions = (
            {"_op_type": "create", "_index": doc.index, "_id": doc.id, "_source": doc.source}
            if doc.update is None
            else {
                "_op_type": "update",
                "_index": doc.index,
                "_id": doc.id,
                "_source": {"doc": doc.update},
                **(
                    {"if_seq_no": doc.guard[0], "if_primary_term": doc.guard[1]}
                    if doc.guard is not None
                    else {}
                ),
            }
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
            detail = item.get("create") or item["update"]
            error = detail.get("error")
            reason = (
                f"{error.get('type')}: {error.get('reason')}"
                if isinstance(error, dict)
                else str(error or "")
            )
            outcomes.append((int(detail.get("status", 0)), reason, str(detail.get("result", ""))))
        return outcomes
