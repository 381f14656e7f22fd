"""Suppressions: "suppress similar" from an alert, the list with counts, ending one early,
the export `socpipe scan --suppressions` reads."""

from __future__ import annotations

import json
from datetime import timedelta

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from socpipe.console.elastic import field as field_of
from socpipe.console.elastic import iso, now
from socpipe.console.pages.common import console_of, render
from socpipe.console.suppressions import suggested_fields
from socpipe.console.web import SuppressionReader, SuppressionWriter, client_address
from socpipe.detectors.suppression import MAX_DAYS, SuppressionError

router = APIRouter()


@router.get("/alerts/{alert_id}/suppress")
async def suppress_form(request: Request, signed: SuppressionWriter, alert_id: str) -> Response:
    hit = await console_of(request).alerts(signed.user).get(alert_id)
    if hit is None:
        raise HTTPException(404, "no such alert")
    return render(
        request,
        "suppress.html",
        a=hit.source,
        alert_id=alert_id,
        suggested=suggested_fields(hit.source),
        max_days=MAX_DAYS,
    )


@router.post("/suppressions")
async def create_suppression(request: Request, signed: SuppressionWriter) -> Response:
    console = console_of(request)
    form = await request.form()
    alert_id = str(form.get("alert", ""))
    hit = await console.alerts(signed.user).get(alert_id)
    if hit is None:
        raise HTTPException(404, "no such alert")
    chosen = {str(v) for v in form.getlist("use")}
    fields = []
    for index in range(64):
        name = form.get(f"name_{index}")
        if name is None:
            break
        if str(index) in chosen:
            fields.append((str(name), str(form.get(f"value_{index}", ""))))
    try:
        days_text = str(form.get("days", ""))
        if not days_text.isdigit() or not 1 <= int(days_text) <= MAX_DAYS:
            raise SuppressionError(f"the expiry must be 1 to {MAX_DAYS} days away")
        await console.suppressions.create(
            signed.user,
            rule_id=str(field_of(hit.source, "rule.id")),
            rule_name=str(field_of(hit.source, "rule.name") or ""),
            fields=fields,
            reason=str(form.get("reason", "")),
            expires=now() + timedelta(days=int(days_text)),
            source_alert=alert_id,
            address=client_address(request),
        )
    except SuppressionError as error:
        return render(
            request,
            "suppress.html",
            status=400,
            a=hit.source,
            alert_id=alert_id,
            suggested=suggested_fields(hit.source),
            max_days=MAX_DAYS,
            error=str(error),
        )
    return RedirectResponse("/suppressions", status_code=303)


@router.get("/suppressions")
async def suppressions_page(request: Request, signed: SuppressionReader, all: str = "") -> Response:
    items = await console_of(request).suppressions.find(include_ended=all == "1")
    return render(
        request, "suppressions.html", items=items, show_all=all == "1", now_iso=iso(now())
    )


@router.get("/suppressions/export.json")
async def export_suppressions(request: Request, signed: SuppressionReader) -> Response:
    document = await console_of(request).suppressions.export()
    return Response(
        json.dumps(document, indent=1, ensure_ascii=False),
        media_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="suppressions.json"'},
    )


@router.post("/suppressions/{ident}/disable")
async def disable_suppression(request: Request, signed: SuppressionWriter, ident: str) -> Response:
    if not await console_of(request).suppressions.disable(
        signed.user, ident, client_address(request)
    ):
        raise HTTPException(404, "no such suppression")
    return RedirectResponse("/suppressions", status_code=303)
