"""The queue (filters, grouping, bulk actions, exports) and one alert's page with its triage
form."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs, urlencode

import anyio
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from socpipe.console.alert_view import build_view
from socpipe.console.audit import AuditEntry
from socpipe.console.elastic import now
from socpipe.console.health import DestinationHealth, read_health
from socpipe.console.pages.common import console_of, render
from socpipe.console.querylang import compile_query
from socpipe.console.queue import (
    EXPORT_COLUMNS,
    GROUPS,
    LEVELS,
    FilterError,
    QueueFilter,
    encode_cursor,
    export_row,
)
from socpipe.console.scope import ScopedAlerts
from socpipe.console.triage import (
    RESOLUTIONS,
    STATUSES,
    Change,
    Conflict,
    NotFound,
    TriageError,
    TriageService,
)
from socpipe.console.web import AlertReader, Signed, Triager, client_address

router = APIRouter()
#: How long the destinations' progress (a few Kafka round trips) is reused across pages.
FORWARD_HEALTH_SECS = 10.0


def queue_filter(request: Request) -> QueueFilter:
    params = request.query_params
    multi = {name: params.getlist(name) for name in ("level", "status")}
    return QueueFilter.from_params(dict(params), multi)


async def queue_context(alerts: ScopedAlerts, chosen: QueueFilter) -> dict[str, Any]:
    """What the queue's results show: a page of alerts, or the groups with their counts."""
    aggs = chosen.group_aggregation()
    response = await alerts.search(
        chosen.clauses(),
        size=0 if aggs else chosen.size,
        search_after=chosen.search_after(),
        aggs=aggs,
        source_excludes=["events", "alert.history", "alert.notes"],
    )
    hits = response["hits"]["hits"]
    groups = []
    if aggs:
        for bucket in response["aggregations"]["groups"]["buckets"]:
            levels = {b["key"]: b["doc_count"] for b in bucket["levels"]["buckets"]}
            link = urlencode(group_drilldown(chosen, str(bucket["key"])).params())
            groups.append(
                {"key": bucket["key"], "count": bucket["doc_count"], "levels": levels, "link": link}
            )
    next_page = ""
    if not aggs and len(hits) == chosen.size:
        next_page = urlencode(chosen.params(after=encode_cursor(hits[-1]["sort"])))
    return {
        "filter": chosen,
        "total": response["hits"]["total"]["value"],
        "hits": hits,
        "groups": groups,
        "group_field": GROUPS.get(chosen.group, ""),
        "next_page": next_page,
        "filter_query": urlencode(chosen.params(after="")),
    }


def group_drilldown(chosen: QueueFilter, key: str) -> QueueFilter:
    """The filter of one group's alerts (a click on a group's name)."""
    if chosen.group == "host":
        return replace(chosen, group="", after="", host=key)
    if chosen.group == "agency":
        return replace(chosen, group="", after="", agency=key)
    quoted = key.replace("\\", "\\\\").replace('"', '\\"')
    query = f'rule.name:"{quoted}"'
    if chosen.query:
        query = f"({chosen.query}) and {query}"
    return replace(chosen, group="", after="", query=query, compiled=compile_query(query))


def _queue_page(
    request: Request, context: dict[str, Any], status: int = 200, **extra: Any
) -> Response:
    # The whole page even for htmx, which picks #results out of it (hx-select): a history
    # restore (the Back button) asks the same URL and needs the whole page.
    return render(
        request,
        "queue.html",
        status=status,
        levels=LEVELS,
        statuses=STATUSES,
        resolutions=RESOLUTIONS,
        **context,
        **extra,
    )


@router.get("/alerts")
async def queue(request: Request, signed: AlertReader) -> Response:
    alerts = console_of(request).alerts(signed.user)
    try:
        chosen = queue_filter(request)
    except FilterError as error:
        context = await queue_context(alerts, QueueFilter())
        return _queue_page(
            request,
            context,
            status=400,
            error=str(error),
            raw_query=request.query_params.get("q", ""),
        )
    return _queue_page(request, await queue_context(alerts, chosen))


def _change_from_form(form: Any) -> Change:
    def value(name: str) -> str | None:
        text = str(form.get(name, "") or "").strip()
        return text or None

    assignee = value("assignee")
    if str(form.get("unassign", "")) == "1":
        assignee = ""  # Change: "" unassigns, None leaves the assignee as it is
    return Change(
        status=value("status"),
        resolution=value("resolution"),
        assignee=assignee.lower() if assignee else assignee,
        note=value("note"),
    )


@router.post("/alerts/bulk")
async def bulk(request: Request, signed: Triager) -> Response:
    console = console_of(request)
    alerts = console.alerts(signed.user)
    form = await request.form()
    saved = parse_qs(str(form.get("filter", "")), max_num_fields=64)
    chosen = QueueFilter.from_params({k: v[-1] for k, v in saved.items()}, saved)
    service = TriageService(alerts, console.audit, signed.user, client_address(request))
    try:
        change = _change_from_form(form)
        if change.empty:
            raise TriageError("choose a status, an assignee or a note to apply")
        if str(form.get("everything", "")) == "1":
            result = await service.apply_to_filter(chosen.clauses(), change)
        else:
            targets = []
            for item in form.getlist("alert"):
                ident, _, version = str(item).partition("|")
                targets.append((ident, version or None))
            if not targets:
                raise TriageError("select at least one alert")
            result = await service.apply_many(targets, change)
    except TriageError as error:
        return _queue_page(request, await queue_context(alerts, chosen), 400, error=str(error))
    return _queue_page(
        request,
        await queue_context(alerts, chosen),
        404 if result.not_found and not result.changed else 200,
        message=result.summary(),
        conflicts=[str(c) for c in result.conflicts],
    )


async def _export_rows(alerts: ScopedAlerts, chosen: QueueFilter, limit: int) -> AsyncIterator[Any]:
    async for hit in alerts.iterate(chosen.clauses(), limit):
        yield hit.source


@router.get("/alerts/export.csv")
async def export_csv(request: Request, signed: AlertReader) -> Response:
    return await _export(request, signed, "csv")


@router.get("/alerts/export.json")
async def export_json(request: Request, signed: AlertReader) -> Response:
    return await _export(request, signed, "json")


async def _export(request: Request, signed: Signed, kind: str) -> Response:
    console = console_of(request)
    try:
        chosen = queue_filter(request)
    except FilterError as error:
        raise HTTPException(400, str(error)) from None
    alerts = console.alerts(signed.user)
    limit = console.settings.export_max_rows
    await console.audit.record(
        AuditEntry(
            actor=signed.user.name,
            role=signed.user.role.value,
            action="alerts.export",
            detail=f"{kind}: {urlencode(chosen.params(after=''))}"[:2000],
            address=client_address(request),
        )
    )

    async def csv_lines() -> AsyncIterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(EXPORT_COLUMNS)
        async for source in _export_rows(alerts, chosen, limit):
            writer.writerow(export_row(source))
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
        yield buffer.getvalue()

    async def json_lines() -> AsyncIterator[str]:
        yield "["
        first = True
        async for source in _export_rows(alerts, chosen, limit):
            slim = {k: v for k, v in source.items() if k != "events"}
            yield ("" if first else ",\n") + json.dumps(slim, ensure_ascii=False)
            first = False
        yield "]\n"

    stamp = now().strftime("%Y%m%dT%H%M%SZ")
    media = "text/csv; charset=utf-8" if kind == "csv" else "application/json"
    return StreamingResponse(
        csv_lines() if kind == "csv" else json_lines(),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="alerts-{stamp}.{kind}"'},
    )


async def forward_health(request: Request) -> list[DestinationHealth] | None:
    """The destinations' state, reused for a few seconds (each read is several Kafka calls)."""
    console = console_of(request)
    if not console.config.forwarding.destinations:
        return []
    cached = getattr(request.app.state, "forward_health", None)
    if cached is not None and time.monotonic() - cached[0] < FORWARD_HEALTH_SECS:
        return cached[1]  # type: ignore[no-any-return]
    try:
        health = await anyio.to_thread.run_sync(read_health, console.config)
    except Exception:
        return None
    request.app.state.forward_health = (time.monotonic(), health.destinations)
    return health.destinations


async def _alert_page(
    request: Request, signed: Signed, alert_id: str, status: int = 200, **extra: Any
) -> Response:
    alerts = console_of(request).alerts(signed.user)
    hit = await alerts.get(alert_id)
    if hit is None:
        raise HTTPException(404, "no such alert")
    view = await build_view(alerts, hit, console_of(request).config, await forward_health(request))
    return render(
        request,
        "alert.html",
        status=status,
        view=view,
        a=hit.source,
        statuses=STATUSES,
        resolutions=RESOLUTIONS,
        **extra,
    )


@router.get("/alerts/{alert_id}")
async def alert_page(request: Request, signed: AlertReader, alert_id: str) -> Response:
    return await _alert_page(request, signed, alert_id)


@router.post("/alerts/{alert_id}")
async def triage(request: Request, signed: Triager, alert_id: str) -> Response:
    console = console_of(request)
    form = await request.form()
    service = TriageService(
        console.alerts(signed.user), console.audit, signed.user, client_address(request)
    )
    try:
        change = _change_from_form(form)
        await service.apply(alert_id, change, str(form.get("version", "")) or None)
    except NotFound:
        raise HTTPException(404, "no such alert") from None
    except TriageError as error:
        return await _alert_page(request, signed, alert_id, 400, error=str(error))
    except Conflict as conflict:
        return await _alert_page(request, signed, alert_id, 409, conflict=str(conflict))
    return RedirectResponse(f"/alerts/{alert_id}", status_code=303)
