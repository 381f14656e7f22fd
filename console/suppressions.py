"""Suppressions as the console keeps them: made from an alert, stored in Elasticsearch for the
detect stage to reload (daemon/suppression_feed.py), listed with how often each applied,
ended early, exported for `socpipe scan --suppressions`. Every change is audited."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from elasticsearch import AsyncElasticsearch, NotFoundError

from socpipe.console.audit import AuditEntry, AuditLog
from socpipe.console.elastic import field, iso, now
from socpipe.console.roles import Permission
from socpipe.console.users import User
from socpipe.detectors.alert import ENTITY_FIELDS
from socpipe.detectors.suppression import MAX_DAYS, Suppression, SuppressionError, export_document

MAX_LISTED = 1000


def suggested_fields(alert: Mapping[str, Any]) -> list[tuple[str, str]]:
    """What "suppress similar" pre-fills from an alert: its agency, its entity fields and a
    correlation's group-by fields (the analyst then narrows them)."""
    names = ["organization.id", *ENTITY_FIELDS]
    group = field(dict(alert), "correlation.group")
    if isinstance(group, dict):
        names += [name for name in group if name not in names]
    pairs = []
    for name in names:
        value = field(dict(alert), name)
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            pairs.append((name, str(value)))
    return pairs


class SuppressionStore:
    def __init__(self, client: AsyncElasticsearch, index: str, audit: AuditLog) -> None:
        self.client = client
        self.index = index
        self.audit = audit

    async def create(
        self,
        user: User,
        rule_id: str,
        rule_name: str,
        fields: list[tuple[str, str]],
        reason: str,
        expires: datetime,
        source_alert: str = "",
        address: str = "",
    ) -> Suppression:
        if not user.role.can(Permission.SUPPRESS):
            raise SuppressionError(f"role {user.role} cannot create suppressions")
        if not reason.strip():
            raise SuppressionError("a reason is required")
        created = now()
        if expires - created > timedelta(days=MAX_DAYS):
            raise SuppressionError(f"a suppression lasts at most {MAX_DAYS} days")
        suppression = Suppression(
            id=uuid.uuid4().hex,
            rule_id=rule_id,
            fields=tuple(fields),
            created=created,
            expires=expires,
            reason=reason.strip(),
            created_by=user.name,
            rule_name=rule_name,
        )
        document = suppression.to_dict()
        del document["id"]
        organization = dict(fields).get("organization.id")
        document.update(
            {
                "hits": 0,
                "last_hit": None,
                "source_alert": source_alert or None,
                "organization.id": organization,
            }
        )
        await self.client.create(
            index=self.index, id=suppression.id, document=document, refresh="wait_for"
        )
        await self.audit.record(
            AuditEntry(
                actor=user.name,
                role=user.role.value,
                action="suppression.create",
                target=suppression.id,
                organization=organization,
                after=", ".join(f"{name}={value}" for name, value in fields),
                detail=f"rule {rule_id}; expires {iso(expires)}; reason: {reason.strip()}",
                address=address,
            )
        )
        return suppression

    async def get(self, ident: str) -> dict[str, Any] | None:
        if not ident or len(ident) > 128:
            return None
        try:
            response = await self.client.get(index=self.index, id=ident)
        except NotFoundError:
            return None
        return {"id": response["_id"], **response["_source"]}

    async def find(self, include_ended: bool = False) -> list[dict[str, Any]]:
        clauses: list[dict[str, Any]] = []
        if not include_ended:
            clauses = [
                {"range": {"expires": {"gt": iso(now())}}},
                {"bool": {"must_not": [{"term": {"disabled": True}}]}},
            ]
        response = await self.client.search(
            index=self.index,
            query={"bool": {"filter": clauses}},
            sort=[{"created": "desc"}],
            size=MAX_LISTED,
        )
        return [{"id": hit["_id"], **hit["_source"]} for hit in response["hits"]["hits"]]

    async def disable(self, user: User, ident: str, address: str = "") -> bool:
        if not user.role.can(Permission.SUPPRESS):
            raise SuppressionError(f"role {user.role} cannot change suppressions")
        current = await self.get(ident)
        if current is None:
            return False
        await self.client.update(
            index=self.index, id=ident, doc={"disabled": True}, refresh="wait_for"
        )
        await self.audit.record(
            AuditEntry(
                actor=user.name,
                role=user.role.value,
                action="suppression.disable",
                target=ident,
                organization=current.get("organization.id"),
                field="disabled",
                before=False,
                after=True,
                address=address,
            )
        )
        return True

    async def export(self) -> dict[str, Any]:
        """The active suppressions as the file `socpipe scan --suppressions` reads."""
        active = []
        for document in await self.find():
            try:
                active.append(Suppression.from_dict(document, document["id"]))
            except SuppressionError:
                continue  # a damaged entry is shown on the page, not exported
        return export_document(active, now())
