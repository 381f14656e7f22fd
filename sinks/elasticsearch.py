"""Elasticsearch: index templates, and bulk writes that are safe to replay.

Events, alerts and ledger records are written with ``create`` and a deterministic ``_id``: a
replay after a crash gets 409 for what was already written (counted as success), so nothing
is duplicated and the triage state an analyst set on an alert is never overwritten.

Incidents grow, so they are written with a scripted upsert (:func:`incident_update`) that
touches only the pipeline's fields and merges them monotonically: first seen takes the
minimum, last seen, alert count and level the maximum, lists the union. Applying an update
twice, or an old update after a newer one (a replay), therefore changes nothing, and the
analysts' fields (``incident.status``, assignee, notes...) are never written after creation.

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

from socpipe.core import envelope
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
    #: For an update instead of a create: the update's body (script and upsert).
    update: dict[str, Any] | None = None

    @classmethod
    def of(cls, index: str, id: str, body: dict[str, Any]) -> Document:
        return cls(index, id, envelope.encode(body))


#: Incident fields merged by taking the earliest / the latest value (ISO 8601 times).
INCIDENT_EARLIEST = ("@timestamp", "incident.first_seen")
INCIDENT_LATEST = ("incident.last_seen",)
#: Fields that follow the incident's level: replaced when an update is more severe.
INCIDENT_BY_LEVEL = (
    "incident.level",
    "event.severity",
    "incident.title",
    "rule.id",
    "rule.name",
    "rule.level",
    "rule.description",
)
#: Fields that follow the alert count: replaced when an update holds more alerts.
INCIDENT_BY_COUNT = ("incident.alert_count", "incident.alerts", "incident.rules")
#: Other list fields are merged as sets, up to this many values.
INCIDENT_LIST_CAP = 100
#: Analysts' fields: set to their initial values when the incident is created, never after.
INCIDENT_TRIAGE_DEFAULTS: dict[str, Any] = {"incident.status": "new"}
#: Not stored: how the detect stage tells forward policies what the level was before.
INCIDENT_TRANSIENT = ("incident.previous_level",)

INCIDENT_MERGE = """
Map s = ctx._source; Map d = params.doc; boolean changed = false;
for (String k : params.earliest) {
  def v = d.get(k); def c = s.get(k);
  if (v != null && (c == null || v.compareTo(c) < 0)) { s.put(k, v); changed = true; }
}
for (String k : params.latest) {
  def v = d.get(k); def c = s.get(k);
  if (v != null && (c == null || v.compareTo(c) > 0)) { s.put(k, v); changed = true; }
}
def severity = s.get('event.severity');
long level = ((Number) d.get('event.severity')).longValue();
if (severity == null || level > ((Number) severity).longValue()) {
  for (String k : params.by_level) { if (d.containsKey(k)) { s.put(k, d.get(k)); } }
  changed = true;
}
def count = s.get('incident.alert_count');
long alerts = ((Number) d.get('incident.alert_count')).longValue();
if (count == null || alerts > ((Number) count).longValue()) {
  for (String k : params.by_count) { if (d.containsKey(k)) { s.put(k, d.get(k)); } }
  changed = true;
}
for (def entry : d.entrySet()) {
  String k = entry.getKey(); def v = entry.getValue();
  if (!(v instanceof List) || params.by_count.contains(k)) { continue; }
  def c = s.get(k);
  List merged = new ArrayList();
  if (c instanceof List) { merged.addAll(c); } else if (c != null) { merged.add(c); }
  int before = merged.size();
  for (def item : v) {
    if (merged.size() >= params.cap) { break; }
    if (!merged.contains(item)) { merged.add(item); }
  }
  if (merged.size() != before) { s.put(k, merged); changed = true; }
}
if (!changed) { ctx.op = 'noop'; }
"""


def incident_update(index: str, body: dict[str, Any]) -> Document:
    """The write of one incident update: created as it is (with the analysts' fields at their
    initial values) or merged into the stored incident (module docstring)."""
    document = {
        key: value
        for key, value in body.items()
        if key not in INCIDENT_TRANSIENT and key not in INCIDENT_TRIAGE_DEFAULTS
    }
    for key in ("incident.id", "event.severity", "incident.alert_count"):
        if key not in document:
            raise KeyError(key)
    script = {
        "source": INCIDENT_MERGE,
        "lang": "painless",
        "params": {
            "doc": document,
            "earliest": list(INCIDENT_EARLIEST),
            "latest": list(INCIDENT_LATEST),
            "by_level": list(INCIDENT_BY_LEVEL),
            "by_count": list(INCIDENT_BY_COUNT),
            "cap": INCIDENT_LIST_CAP,
        },
    }
    update = {"script": script, "upsert": {**document, **INCIDENT_TRIAGE_DEFAULTS}}
    return Document(index, str(document["incident.id"]), envelope.encode(document), update)


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


#: Settings of a template that its existing single index is brought up to date with.
ALERTS_DYNAMIC_SETTINGS = ("index.refresh_interval",)


def install_templates(
    client: Elasticsearch, config: ElasticsearchConfig, template_dir: Path | None = None
) -> list[str]:
    """Put the composable templates and create the single indices (alerts, incidents,
    forwarding ledger); safe to run any number of times."""
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
    installed = []
    bodies = {}
    for kind, (name, pattern) in targets.items():
        body = json.loads((folder / f"{kind}.template.json").read_text(encoding="utf-8"))
        body["index_patterns"] = [pattern]
        client.indices.put_index_template(name=name, **body)
        installed.append(name)
        bodies[kind] = body
    for kind, index in single.items():
        if not client.indices.exists(index=index):
            try:
                client.indices.create(index=index)
            except ApiError as error:
                if error.meta.status != 400 or "resource_already_exists" not in str(error):
                    raise
        # A single index outlives template changes: its dynamic settings follow them.
        settings = bodies[kind]["template"]["settings"]
        dynamic = {name: settings[name] for name in ALERTS_DYNAMIC_SETTINGS if name in settings}
        if dynamic:
            client.indices.put_settings(index=index, settings=dynamic)
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
                if self.should_stop():
                    raise InterruptedError("stopping while Elasticsearch is unavailable")
                time.sleep(delay)
                delay = min(delay * 2, self.config.retry_max_secs)
        return result

    def _bulk(self, documents: list[Document]) -> list[tuple[int, str, str]]:
        actions = (
            {"_op_type": "create", "_index": doc.index, "_id": doc.id, "_source": doc.source}
            if doc.update is None
            else {
                "_op_type": "update",
                "_index": doc.index,
                "_id": doc.id,
                "_source": doc.update,
                # Two index processes may update one incident at once: the merge commutes.
                "retry_on_conflict": 5,
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
