"""The console's Elasticsearch client, and reading fields out of documents.

The browser never talks to Elasticsearch and never receives its credentials: every request
goes through the console, which holds the one client built here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from elasticsearch import AsyncElasticsearch

from socpipe.core.config import ElasticsearchConfig


def connect_async(config: ElasticsearchConfig) -> AsyncElasticsearch:
    """The client, with the configured API key or user and password and the CA (the same
    options as the daemon's client: ``ElasticsearchConfig.client_options``)."""
    return AsyncElasticsearch(config.hosts, request_timeout=30, **config.client_options())


def field(source: dict[str, Any], name: str, default: Any = None) -> Any:
    """A field of a document by its dotted name, whether stored flat (``"alert.status"``, how
    socpipe writes) or as nested objects (how other tools may have written it)."""
    if name in source:
        return source[name]
    node: Any = source
    parts = name.split(".")
    for index, part in enumerate(parts):
        if not isinstance(node, dict):
            return default
        rest = ".".join(parts[index:])
        if rest in node:
            return node[rest]
        if part not in node:
            return default
        node = node[part]
    return node


def now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """UTC with milliseconds and ``Z``, as every socpipe document."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
