"""Agency scope: the one place where the console reads and writes alerts and events.

Elasticsearch's free licence has no document-level security, so the boundary between
agencies is here. Every search, count, aggregation, export and lookup of alerts or events
goes through ``ScopedAlerts``, which puts the user's ``organization.id`` filter beside
whatever the page asked for, as a separate ``filter`` clause that no query can widen (a user's
query is one more clause in the same ``bool.filter``, so ``organization.id:other or x`` still
meets the agency filter). A lookup by id of another agency's alert answers "not found", as an
unknown id would: its existence is not revealed. Correlation alerts that span agencies carry
``organization.id: multiple`` and so are seen by central roles only. Writes take a hit that a
scoped read returned, never a bare id. No other module queries the alerts or events indices
(tests/console/test_scope.py checks the source for it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from elasticsearch import AsyncElasticsearch, NotFoundError, helpers

from socpipe.console.elastic import field
from socpipe.console.roles import Permission
from socpipe.console.settings import Indices
from socpipe.console.users import User

AGENCY_FIELD = "organization.id"
#: What a document without an agency, or a correlation over several, carries.
MULTIPLE_AGENCIES = "multiple"
NEWEST_FIRST: list[dict[str, Any]] = [
    {"@timestamp": {"order": "desc", "unmapped_type": "date"}},
    {"alert.id": {"order": "asc", "unmapped_type": "keyword"}},
]
MAX_IDS = 10_000


class ScopeError(PermissionError):
    """A user whose role reads no alerts asked for some."""


@dataclass(frozen=True)
class Scope:
    """Which agencies' documents a user may see: one (``agency``) or all (``None``)."""

    agency: str | None

    @classmethod
    def of(cls, user: User) -> Scope:
        if not user.role.can(Permission.READ_ALERTS):
            raise ScopeError(f"role {user.role} does not read alerts")
        if user.role.agency_bound:
            if not user.agency:
                raise ScopeError(f"user {user.name} has an agency role but no agency")
            return cls(user.agency)
        return cls(None)

    def clauses(self) -> list[dict[str, Any]]:
        return [] if self.agency is None else [{"term": {AGENCY_FIELD: self.agency}}]

    def query(self, clauses: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
        """The request's query: the scope filter and the page's clauses, all required."""
        return {"bool": {"filter": [*self.clauses(), *clauses]}}

    def allows(self, source: dict[str, Any]) -> bool:
        return self.agency is None or field(source, AGENCY_FIELD) == self.agency


@dataclass(frozen=True)
class AlertHit:
    """An alert as read, with the version an update must match."""

    index: str
    id: str
    source: dict[str, Any]
    seq_no: int
    primary_term: int

    @property
    def version(self) -> str:
        return f"{self.seq_no}:{self.primary_term}"

    @classmethod
    def from_hit(cls, hit: dict[str, Any]) -> AlertHit:
        return cls(hit["_index"], hit["_id"], hit["_source"], hit["_seq_no"], hit["_primary_term"])


class ScopedAlerts:
    def __init__(self, client: AsyncElasticsearch, indices: Indices, scope: Scope) -> None:
        self.client = client
        self.indices = indices
        self.scope = scope

    @property
    def events_pattern(self) -> str:
        return f"{self.indices.events_prefix}*"

    async def search(
        self,
        clauses: Sequence[dict[str, Any]] = (),
        *,
        size: int = 50,
        sort: list[dict[str, Any]] | None = None,
        search_after: list[Any] | None = None,
        aggs: dict[str, Any] | None = None,
        track_total_hits: bool | int = True,
        source_excludes: Sequence[str] = (),
    ) -> dict[str, Any]:
        """Alerts matching the clauses within the scope (with versions), and aggregations."""
        options: dict[str, Any] = {}
        if search_after:
            options["search_after"] = search_after
        if aggs:
            options["aggs"] = aggs
        if source_excludes:
            options["source_excludes"] = list(source_excludes)
        return dict(
            await self.client.search(
                index=self.indices.alerts,
                query=self.scope.query(clauses),
                size=size,
                sort=sort or NEWEST_FIRST,
                seq_no_primary_term=True,
                track_total_hits=track_total_hits,
                **options,
            )
        )

    async def count(self, clauses: Sequence[dict[str, Any]] = ()) -> int:
        response = await self.client.count(
            index=self.indices.alerts, query=self.scope.query(clauses)
        )
        return int(response["count"])

    async def get(self, alert_id: str) -> AlertHit | None:
        """The alert with this id, or None when it does not exist or is out of scope."""
        if not alert_id or len(alert_id) > 512:
            return None
        try:
            response = await self.client.get(index=self.indices.alerts, id=alert_id)
        except NotFoundError:
            return None
        if not self.scope.allows(response["_source"]):
            return None
        return AlertHit.from_hit(dict(response))

    async def get_many(self, alert_ids: Sequence[str]) -> dict[str, AlertHit]:
        """The alerts among these ids that exist and are in scope, by id."""
        wanted = [ident for ident in dict.fromkeys(alert_ids) if ident and len(ident) <= 512]
        if not wanted:
            return {}
        if len(wanted) > MAX_IDS:
            raise ValueError(f"at most {MAX_IDS} alerts at once")
        response = await self.client.mget(index=self.indices.alerts, ids=wanted)
        found = {}
        for doc in response["docs"]:
            if doc.get("found") and self.scope.allows(doc["_source"]):
                found[doc["_id"]] = AlertHit.from_hit(doc)
        return found

    async def iterate(
        self, clauses: Sequence[dict[str, Any]], limit: int, page_size: int = 1000
    ) -> AsyncIterator[AlertHit]:
        """Alerts matching the clauses, newest first, at most ``limit`` (exports, bulk
        actions on a whole filter)."""
        after: list[Any] | None = None
        given = 0
        while given < limit:
            wanted = min(page_size, limit - given)
            response = await self.search(
                clauses, size=wanted, search_after=after, track_total_hits=False
            )
            hits = response["hits"]["hits"]
            for hit in hits:
                yield AlertHit.from_hit(hit)
            given += len(hits)
            if len(hits) < wanted:
                return
            after = hits[-1]["sort"]

    async def update(self, hit: AlertHit, document: dict[str, Any]) -> AlertHit:
        """A flat partial update guarded by the version ``hit`` was read at: raises
        elasticsearch.ConflictError when someone changed the alert since."""
        response = await self.client.update(
            index=hit.index,
            id=hit.id,
            doc=document,
            if_seq_no=hit.seq_no,
            if_primary_term=hit.primary_term,
            refresh="wait_for",
        )
        return AlertHit(
            hit.index,
            hit.id,
            {**hit.source, **document},
            response["_seq_no"],
            response["_primary_term"],
        )

    async def update_many(
        self, changes: Sequence[tuple[AlertHit, dict[str, Any]]]
    ) -> dict[str, int]:
        """Guarded partial updates in one bulk request: alert id -> HTTP status (200 done,
        409 changed by someone else since it was read)."""
        if not changes:
            return {}
        actions = [
            {
                "_op_type": "update",
                "_index": hit.index,
                "_id": hit.id,
                "if_seq_no": hit.seq_no,
                "if_primary_term": hit.primary_term,
                "doc": document,
            }
            for hit, document in changes
        ]
        statuses: dict[str, int] = {}
        async for _ok, item in helpers.async_streaming_bulk(
            self.client,
            actions,
            raise_on_error=False,
            raise_on_exception=False,
            refresh="wait_for",
            chunk_size=500,
        ):
            detail = item["update"]
            statuses[detail["_id"]] = int(detail.get("status", 0))
        return statuses

    async def forwarding_records(self, incident_id: str) -> list[dict[str, Any]]:
        """The forwarding ledger's records of an incident within the scope, oldest first."""
        response = await self.client.search(
            index=self.indices.forwarding,
            query=self.scope.query([{"term": {"incident.id": incident_id}}]),
            size=1000,
            sort=[{"@timestamp": {"order": "asc", "unmapped_type": "date"}}],
            ignore_unavailable=True,
            allow_no_indices=True,
        )
        return [hit["_source"] for hit in response["hits"]["hits"]]

    async def search_events(
        self,
        clauses: Sequence[dict[str, Any]],
        *,
        size: int = 50,
        sort: list[dict[str, Any]] | None = None,
    ) -> list[dict[str, Any]]:
        """Events (from the daily event indices) matching the clauses within the scope."""
        response = await self.client.search(
            index=self.events_pattern,
            query=self.scope.query(clauses),
            size=size,
            sort=sort or [{"@timestamp": {"order": "desc", "unmapped_type": "date"}}],
            ignore_unavailable=True,
            allow_no_indices=True,
        )
        return [hit["_source"] for hit in response["hits"]["hits"]]
