"""The audit log: who did what, when, from where, and what a change replaced.

Logins, failed logins, logouts, every triage change (one entry per field), user and
suppression changes and dead-letter re-submits. Entries are only ever added. The login
throttle counts failed logins here too, so that every console process shares the count.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from elasticsearch import AsyncElasticsearch, helpers

from socpipe.console.elastic import iso, now

MAX_VALUE_CHARS = 1000
PAGE_SIZE = 100


@dataclass(frozen=True)
class AuditEntry:
    actor: str
    action: str
    target: str = ""
    field: str = ""
    before: Any = None
    after: Any = None
    organization: str | None = None
    address: str = ""
    detail: str = ""
    role: str = ""

    def document(self, moment: str) -> dict[str, Any]:
        return {
            "@timestamp": moment,
            "actor": self.actor,
            "role": self.role,
            "action": self.action,
            "target": self.target,
            "organization.id": self.organization,
            "field": self.field,
            "from": _text(self.before),
            "to": _text(self.after),
            "address": self.address[:128],
            "detail": self.detail[:2000],
        }


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return str(value)[:MAX_VALUE_CHARS]


class AuditLog:
    def __init__(self, client: AsyncElasticsearch, index: str) -> None:
        self.client = client
        self.index = index

    async def record(self, *entries: AuditEntry, refresh: bool | str = False) -> None:
        """Append entries (one request); ``refresh='wait_for'`` when the next request must
        count them (failed logins)."""
        moment = iso(now())
        if len(entries) == 1:
            await self.client.index(
                index=self.index,
                id=uuid.uuid4().hex,
                document=entries[0].document(moment),
                refresh=refresh,
            )
            return
        await helpers.async_bulk(
            self.client,
            (
                {
                    "_op_type": "create",
                    "_index": self.index,
                    "_id": uuid.uuid4().hex,
                    "_source": entry.document(moment),
                }
                for entry in entries
            ),
            refresh=refresh,
        )

    async def failed_logins(self, name: str, address: str, window_secs: float) -> tuple[int, int]:
        """Failed logins within the window: (for this user name, from this address)."""
        since = iso(now() - timedelta(seconds=window_secs))
        response = await self.client.search(
            index=self.index,
            size=0,
            query={
                "bool": {
                    "filter": [
                        {"term": {"action": "login_failed"}},
                        {"range": {"@timestamp": {"gte": since}}},
                    ]
                }
            },
            aggs={
                "name": {"filter": {"term": {"target": name}}},
                "address": {"filter": {"term": {"address": address}}},
            },
        )
        aggregations = response["aggregations"]
        return aggregations["name"]["doc_count"], aggregations["address"]["doc_count"]

    async def page(
        self,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        before: str | None = None,
        size: int = PAGE_SIZE,
    ) -> list[dict[str, Any]]:
        """Entries newest first, optionally by actor, action or target; ``before`` pages on."""
        clauses: list[dict[str, Any]] = []
        for name, value in (("actor", actor), ("action", action), ("target", target)):
            if value:
                clauses.append({"term": {name: value}})
        if before:
            clauses.append({"range": {"@timestamp": {"lt": before}}})
        response = await self.client.search(
            index=self.index,
            query={"bool": {"filter": clauses}},
            sort=[{"@timestamp": "desc"}],
            size=min(size, 1000),
        )
        return [hit["_source"] for hit in response["hits"]["hits"]]
