"""Events read back from Elasticsearch: the SOC's history, for training anomaly models.

The events come back as they were indexed (flat ECS dicts), in event-time order, which the
models' tumbling windows need. Pages are read with a point in time and ``search_after``, the
way Elasticsearch recommends for reading a large result in order without holding a scroll
context per page.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from elasticsearch import Elasticsearch

from socpipe.core.event import Event

PAGE_SIZE = 1000


def read_history(
    client: Elasticsearch,
    index: str,
    since: str | None = None,
    until: str | None = None,
    page_size: int = PAGE_SIZE,
) -> Iterator[Event]:
    """Every event of ``index`` (a pattern is fine) with ``since <= @timestamp < until``."""
    bounds: dict[str, str] = {}
    if since:
        bounds["gte"] = since
    if until:
        bounds["lt"] = until
    query: dict[str, Any] = {"range": {"@timestamp": bounds}} if bounds else {"match_all": {}}
    pit = client.open_point_in_time(index=index, keep_alive="2m")["id"]
    try:
        after: list[Any] | None = None
        while True:
            response = client.search(
                query=query,
                size=page_size,
                pit={"id": pit, "keep_alive": "2m"},
                sort=[{"@timestamp": "asc"}, {"_shard_doc": "asc"}],
                search_after=after,
            )
            pit = response.get("pit_id", pit)
            hits = response["hits"]["hits"]
            for hit in hits:
                yield hit["_source"]
            if len(hits) < page_size:
                return
            after = hits[-1]["sort"]
    finally:
        client.close_point_in_time(id=pit)
