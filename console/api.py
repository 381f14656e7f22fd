"""``/api/v1``: the JSON endpoints, behind the same sessions, scope and CSRF checks as the
pages (scripts log in with ``POST /api/v1/login`` and send the returned ``csrf_token`` in the
``X-CSRF-Token`` header of every POST)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl

import anyio
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response

from socpipe.console.alert_view import build_view
from socpipe.console.elastic import field as field_of
from socpipe.console.elastic import now
from socpipe.console.health import read_health
from socpipe.console.pages.alerts import forward_health, queue_context, queue_filter
from socpipe.console.pages.common import console_of, set_session_cookie, signed_of
from socpipe.console.pages.entities import check_entity, entity_timeline
from socpipe.console.pages.session import authenticate, end_session
from socpipe.console.queue import FilterError, QueueFilter
from socpipe.console.suppressions import suggested_fields
from socpipe.console.triage import Change, Conflict, NotFound, TriageError, TriageService
from socpipe.console.web import (
    SESSION_COOKIE,
    AlertReader,
    AuditReader,
    HealthReader,
    Signed,
    SuppressionReader,
    SuppressionWriter,
    Triager,
    client_address,
)
from socpipe.detectors.suppression import MAX_DAYS, SuppressionError

router = APIRouter()
MAX_BULK_IDS = 10_000


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise HTTPException(400, "the body is not JSON") from None
    if not isinstance(body, dict):
        raise HTTPException(400, "the body must be a JSON object")
    return body


def _session_body(signed: Signed, csrf_token: str) -> dict[str, Any]:
    user = signed.user
    return {
        "user": user.name,
        "role": user.role.value,
        "agency": user.agency,
        "timezone": user.timezone,
        "csrf_token": csrf_token,
    }


@router.post("/login")
async def login(request: Request) -> Response:
    console = console_of(request)
    body = await _json(request)
    name = str(body.get("username", "")).strip().lower()
    user, problem = await authenticate(
        console, name, str(body.get("password", "")), client_address(request)
    )
    if user is None:
        return JSONResponse({"error": problem}, status_code=429 if "too many" in problem else 401)
    token, session = await console.sessions.create(user.name, client_address(request))
    response = JSONResponse(_session_body(Signed(user, session, token), session.csrf))
    set_session_cookie(request, response, token)
    return response


@router.get("/session")
async def session(request: Request) -> dict[str, Any]:
    signed = signed_of(request)
    return _session_body(signed, signed.session.csrf)


@router.post("/logout")
async def logout(request: Request) -> Response:
    await end_session(request)
    response = JSONResponse({"ok": True})
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _filter(request: Request) -> QueueFilter:
    try:
        return queue_filter(request)
    except FilterError as error:
        raise HTTPException(400, str(error)) from None


@router.get("/alerts")
async def alerts(request: Request, signed: AlertReader) -> dict[str, Any]:
    chosen = _filter(request)
    context = await queue_context(console_of(request).alerts(signed.user), chosen)
    if chosen.group:
        return {
            "total": context["total"],
            "group": chosen.group,
            "groups": [{k: g[k] for k in ("key", "count", "levels")} for g in context["groups"]],
        }
    next_after = dict(_pairs(context["next_page"])).get("after") if context["next_page"] else None
    return {
        "total": context["total"],
        "alerts": [
            {
                "id": hit["_id"],
                "version": f"{hit['_seq_no']}:{hit['_primary_term']}",
                "alert": hit["_source"],
            }
            for hit in context["hits"]
        ],
        "next": next_after,
    }


def _pairs(query: str) -> list[tuple[str, str]]:
    return parse_qsl(query)


@router.get("/alerts/count")
async def count(request: Request, signed: AlertReader) -> dict[str, Any]:
    chosen = _filter(request)
    return {"count": await console_of(request).alerts(signed.user).count(chosen.clauses())}


@router.get("/alerts/{alert_id}")
async def alert(request: Request, signed: AlertReader, alert_id: str) -> dict[str, Any]:
    console = console_of(request)
    scoped = console.alerts(signed.user)
    hit = await scoped.get(alert_id)
    if hit is None:
        raise HTTPException(404, "no such alert")
    view = await build_view(scoped, hit, console.config, await forward_health(request))
    return view.as_dict()


def _change(body: dict[str, Any]) -> Change:
    def text(name: str) -> str | None:
        value = body.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise TriageError(f"{name}: expected a string")
        return value

    return Change(
        status=text("status"),
        resolution=text("resolution"),
        assignee=text("assignee"),
        note=text("note"),
    )


@router.post("/alerts/bulk")
async def bulk(request: Request, signed: Triager) -> Response:
    """``{"change": {...}, "alerts": [{"id", "version"}]}`` or ``{"change": {...},
    "filter": {query-string parameters}}`` for everything matching a filter."""
    console = console_of(request)
    body = await _json(request)
    service = TriageService(
        console.alerts(signed.user), console.audit, signed.user, client_address(request)
    )
    try:
        change = _change(body.get("change") or {})
        if change.empty:
            raise TriageError("change: give a status, an assignee or a note")
        if "filter" in body:
            raw = body["filter"]
            if not isinstance(raw, dict):
                raise TriageError("filter: expected an object of query parameters")
            multi = {
                k: [str(x) for x in v] if isinstance(v, list) else [str(v)] for k, v in raw.items()
            }
            chosen = QueueFilter.from_params({k: v[-1] for k, v in multi.items() if v}, multi)
            result = await service.apply_to_filter(chosen.clauses(), change)
        else:
            items = body.get("alerts")
            if not isinstance(items, list) or not items or len(items) > MAX_BULK_IDS:
                raise TriageError(f"alerts: a list of 1 to {MAX_BULK_IDS} {{id, version}}")
            targets: list[tuple[str, str | None]] = []
            for item in items:
                if isinstance(item, str):
                    targets.append((item, None))
                elif isinstance(item, dict) and isinstance(item.get("id"), str):
                    version = item.get("version")
                    targets.append((item["id"], str(version) if version else None))
                else:
                    raise TriageError("alerts: items are ids or {id, version}")
            result = await service.apply_many(targets, change)
    except (TriageError, FilterError) as error:
        raise HTTPException(400, str(error)) from None
    status = 404 if result.not_found and not result.changed and not result.conflicts else 200
    return JSONResponse(
        {
            "changed": result.changed,
            "unchanged": result.unchanged,
            "not_found": result.not_found,
            "conflicts": [
                {"id": c.alert_id, "changed_by": c.by, "changed_at": c.at, "error": str(c)}
                for c in result.conflicts
            ],
            "summary": result.summary(),
        },
        status_code=status,
    )


@router.post("/alerts/{alert_id}")
async def change_alert(request: Request, signed: Triager, alert_id: str) -> Response:
    console = console_of(request)
    body = await _json(request)
    service = TriageService(
        console.alerts(signed.user), console.audit, signed.user, client_address(request)
    )
    try:
        version = body.get("version")
        hit = await service.apply(alert_id, _change(body), str(version) if version else None)
    except NotFound:
        raise HTTPException(404, "no such alert") from None
    except TriageError as error:
        raise HTTPException(400, str(error)) from None
    except Conflict as conflict:
        return JSONResponse(
            {"error": str(conflict), "changed_by": conflict.by, "changed_at": conflict.at},
            status_code=409,
        )
    return JSONResponse({"id": hit.id, "version": hit.version, "alert": hit.source})


@router.get("/entities/{name}/{value:path}")
async def entity(request: Request, signed: AlertReader, name: str, value: str) -> dict[str, Any]:
    check_entity(name, value)
    context = await entity_timeline(console_of(request).alerts(signed.user), name, value)
    return {
        "field": name,
        "value": value,
        "alerts_total": context["alerts_total"],
        "alerts": context["alerts"],
        "events": context["events"],
    }


@router.get("/suppressions")
async def suppressions(
    request: Request, signed: SuppressionReader, all: str = ""
) -> dict[str, Any]:
    return {"suppressions": await console_of(request).suppressions.find(include_ended=all == "1")}


@router.post("/suppressions")
async def create_suppression(request: Request, signed: SuppressionWriter) -> Response:
    """``{"alert": id, "fields": {name: value} (default: the alert's suggested fields),
    "reason": text, "days": 1..90}``"""
    console = console_of(request)
    body = await _json(request)
    hit = await console.alerts(signed.user).get(str(body.get("alert", "")))
    if hit is None:
        raise HTTPException(404, "no such alert")
    fields = body.get("fields")
    if fields is None:
        pairs = suggested_fields(hit.source)
    elif isinstance(fields, dict):
        pairs = [(str(k), str(v)) for k, v in fields.items()]
    else:
        raise HTTPException(400, "fields: expected an object {field: value}")
    days = body.get("days")
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_DAYS:
        raise HTTPException(400, f"days: a whole number from 1 to {MAX_DAYS}")
    try:
        created = await console.suppressions.create(
            signed.user,
            rule_id=str(field_of(hit.source, "rule.id")),
            rule_name=str(field_of(hit.source, "rule.name") or ""),
            fields=pairs,
            reason=str(body.get("reason", "")),
            expires=now() + timedelta(days=days),
            source_alert=hit.id,
            address=client_address(request),
        )
    except SuppressionError as error:
        raise HTTPException(400, str(error)) from None
    return JSONResponse(created.to_dict(), status_code=201)


@router.post("/suppressions/{ident}/disable")
async def disable_suppression(
    request: Request, signed: SuppressionWriter, ident: str
) -> dict[str, Any]:
    if not await console_of(request).suppressions.disable(
        signed.user, ident, client_address(request)
    ):
        raise HTTPException(404, "no such suppression")
    return {"ok": True}


@router.get("/health")
async def health(request: Request, signed: HealthReader) -> dict[str, Any]:
    found = await anyio.to_thread.run_sync(read_health, console_of(request).config)
    return asdict(found)


@router.get("/audit")
async def audit(
    request: Request,
    signed: AuditReader,
    actor: str = "",
    action: str = "",
    target: str = "",
    before: str = "",
) -> dict[str, Any]:
    entries = await console_of(request).audit.page(
        actor=actor[:64] or None,
        action=action[:64] or None,
        target=target[:256] or None,
        before=before[:40] or None,
    )
    return {"entries": entries}
