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

Bulk requests are built here as bytes (an action line, then the document's JSON exactly as
it travelled through Kafka) and sent ``bulk_concurrency`` at a time; Elasticsearch answers
with each document's status only (``filter_path``), and a request of creates without errors
is not looked at item by item. The client library's bulk helper built a dictionary and
encoded an action line per document in Python: a third of the index stage's time.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from elasticsearch import ApiError, Elasticsearch, TransportError
from elasticsearch.serializer import JsonSerializer, NdjsonSerializer, OrjsonSerializer

from socpipe.core import envelope, jsontext, metrics
from socpipe.core.config import ElasticsearchConfig
from socpipe.core.resources import templates_dir
from socpipe.sinks import incidents

log = logging.getLogger(__name__)

TRANSIENT_STATUSES = {429, 500, 502, 503, 504}
#: What Elasticsearch sends back of a bulk request: whether any document failed, and each
#: document's status, error and result (not its index, id, version, shard counts...).
BULK_RESPONSE_FILTER = "errors,items.*.status,items.*.error,items.*.result"


@dataclass(slots=True)
class Document:
    """One document to write (not frozen: the index stage makes one per event, and a frozen
    dataclass took as long to build as decoding the event)."""

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


class _EncodedNdjson(NdjsonSerializer):
    """A bulk body the index stage encoded already goes out as it is: the standard
    serializer copied it into a new buffer, line by line (about a tenth of the index stage's
    CPU for 2 MB requests)."""

    def dumps(self, data: Any) -> bytes:
        if isinstance(data, bytes):
            return data
        return super().dumps(data)


def connect(config: ElasticsearchConfig) -> Elasticsearch:
    """A client with the configured authentication (API key or user and password from the
    environment) and CA; certificates are always verified."""
    serializers = {"application/json": _FastJson(), "application/x-ndjson": _EncodedNdjson()}
    options: dict[str, Any] = {"request_timeout": 30, "serializers": serializers}
    return Elasticsearch(config.hosts, **options, **config.client_options())


def events_index(config: ElasticsearchConfig, timestamp: str) -> str:
    """The daily index of an event: ``soc-events-2026.03.03`` for any time that day (UTC)."""
    return f"{config.events_index_prefix}{timestamp[:10].replace('-', '.')}"


class DailyIndices:
    """``events_index`` remembered per day: the index stage asks once per event, and the
    events of a batch fall on a day or two."""

    def __init__(self, config: ElasticsearchConfig, max_days: int = 1000) -> None:
        self.config = config
        self.max_days = max_days
        self._names: dict[str, str] = {}

    def __call__(self, timestamp: str) -> str:
        day = timestamp[:10]
        name = self._names.get(day)
        if name is None:
            if len(self._names) >= self.max_days:  # days come from log content: bounded
                self._names.clear()
            name = self._names[day] = events_index(self.config, timestamp)
        return name


#: Settings of a template that its existing single index is brought up to date with.
ALERTS_DYNAMIC_SETTINGS = ("index.refresh_interval", "number_of_replicas")


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
        body["template"].setdefault("settings", {})["number_of_replicas"] = config.replicas
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
        # Several bulk requests in flight: Elasticsearch indexes them on separate threads
        # while this process waits, instead of one core indexing while the other idles.
        self._senders = ThreadPoolExecutor(
            max_workers=max(config.bulk_concurrency, 1), thread_name_prefix="bulk"
        )
        #: The start of the create line per index name (few: the days being written).
        self._actions: dict[str, bytes] = {}

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
        """Each document's (status, reason, result), in order; raises if a request failed
        whole. Results come back in request order; 429s are retried by write()'s loop."""
        size = max(self.config.bulk_max_docs, 1)
        requests = [documents[start : start + size] for start in range(0, len(documents), size)]
        outcomes: list[tuple[int, str, str]] = []
        for batch, answer in zip(requests, self._senders.map(self._send, requests), strict=True):
            if not answer.get("errors") and all(doc.update is None for doc in batch):
                outcomes.extend([(201, "", "created")] * len(batch))
                continue
            items = answer.get("items") or []
            if len(items) != len(batch):
                raise TransportError(f"bulk answered {len(items)} items for {len(batch)}")
            for item in items:
                detail = item.get("create") or item.get("update") or {}
                error = detail.get("error")
                reason = (
                    f"{error.get('type')}: {error.get('reason')}"
                    if isinstance(error, dict)
                    else str(error or "")
                )
                outcomes.append(
                    (int(detail.get("status", 0)), reason, str(detail.get("result", "")))
                )
        return outcomes

    def _send(self, documents: list[Document]) -> dict[str, Any]:
        parts: list[bytes] = []
        for document in documents:
            if document.update is not None:
                parts += (_update_lines(document), b"\n")
                continue
            action = self._actions.get(document.index)
            if action is None:
                if len(self._actions) > 1000:  # dates from log content: bounded
                    self._actions.clear()
                index = _quoted(document.index)
                action = self._actions[document.index] = b'{"create":{"_index":%s,"_id":' % index
            parts += (action, _quoted(document.id), b"}}\n", document.source, b"\n")
        # A body already encoded goes through as it is (_EncodedNdjson; the client types it
        # as mappings).
        body: Any = b"".join(parts)
        answer = self.client.bulk(operations=body, filter_path=BULK_RESPONSE_FILTER)
        return dict(answer.body)

    def close(self) -> None:
        self._senders.shutdown(wait=True)


def _update_lines(document: Document) -> bytes:
    """The action and body lines of a partial update, guarded by the sequence number."""
    action: dict[str, Any] = {"_index": document.index, "_id": document.id}
    if document.guard is not None:
        action["if_seq_no"], action["if_primary_term"] = document.guard
    return envelope.encode({"update": action}) + b"\n" + envelope.encode({"doc": document.update})


def _quoted(text: str) -> bytes:
    """A string as JSON (strict: a lone surrogate in an id from another producer is escaped,
    where orjson refuses it)."""
    return jsontext.dumps(text)
