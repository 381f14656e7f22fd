"""One entity (host, user, address...): its alerts and events on one timeline, scoped."""

from __future__ import annotations

import ipaddress
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from socpipe.console.alert_view import PIVOT_FIELDS
from socpipe.console.elastic import field as field_of
from socpipe.console.pages.common import console_of, render
from socpipe.console.scope import ScopedAlerts
from socpipe.console.web import AlertReader

router = APIRouter()
IP_FIELDS = frozenset({"source.ip", "destination.ip"})
ENTITY_ROWS = 100


def check_entity(name: str, value: str) -> None:
    if name not in PIVOT_FIELDS or not value or len(value) > 1024:
        raise HTTPException(404, "not an entity field")
    if name in IP_FIELDS:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise HTTPException(404, f"{value!r:.80} is not an IP address") from None


async def entity_timeline(alerts: ScopedAlerts, name: str, value: str) -> dict[str, Any]:
    clause = [{"term": {name: value}}]
    response = await alerts.search(
        clause, size=ENTITY_ROWS, source_excludes=["events", "alert.history", "alert.notes"]
    )
    found = [hit["_source"] for hit in response["hits"]["hits"]]
    events = await alerts.search_events(clause, size=ENTITY_ROWS)
    items = [{"kind": "alert", "at": field_of(s, "@timestamp"), "doc": s} for s in found]
    items += [{"kind": "event", "at": field_of(e, "@timestamp"), "doc": e} for e in events]
    items.sort(key=lambda item: str(item["at"] or ""), reverse=True)
    return {
        "alerts_total": response["hits"]["total"]["value"],
        "alerts": found,
        "events": events,
        "items": items,
    }


@router.get("/entities/{name}/{value:path}")
async def entity_page(request: Request, signed: AlertReader, name: str, value: str) -> Response:
    check_entity(name, value)
    context = await entity_timeline(console_of(request).alerts(signed.user), name, value)
    return render(request, "entity.html", name=name, value=value, **context)
