"""The console's pages (server-rendered; htmx swaps the queue's results in place).

URLs are fixed so that they can be bookmarked and tested. Every route runs behind the guard
of console/web.py (session, CSRF); each checks its permission with ``require``.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import json
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode
from zoneinfo import available_timezones

import anyio
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from console import csrf
from console.alert_view import PIVOT_FIELDS, build_view
from console.audit import AuditEntry
from console.elastic import field as field_of
from console.elastic import iso, now
from console.health import DestinationHealth, ResubmitError, read_health, resubmit
from console.passwords import PasswordRejected, needs_rehash, verify_password
from console.querylang import compile_query
from console.queue import (
    EXPORT_COLUMNS,
    GROUPS,
    LEVELS,
    FilterError,
    QueueFilter,
    encode_cursor,
    export_row,
)
from console.roles import Permission, Role, parse_role
from console.scope import ScopedAlerts
from console.suppressions import suggested_fields
from console.triage import (
    RESOLUTIONS,
    STATUSES,
    Change,
    Conflict,
    NotFound,
    TriageError,
    TriageService,
)
from console.users import UserError
from console.web import (
    SESSION_COOKIE,
    AlertReader,
    AuditReader,
    Console,
    HealthReader,
    Resubmitter,
    Signed,
    SuppressionReader,
    SuppressionWriter,
    Triager,
    UserManager,
    client_address,
    format_time,
)
from detectors.suppression import MAX_DAYS, SuppressionError

router = APIRouter()
IP_FIELDS = frozenset({"source.ip", "destination.ip"})
ENTITY_ROWS = 100
#: How long the destinations' progress (a few Kafka round trips) is reused across pages.
FORWARD_HEALTH_SECS = 10.0
ZONES = sorted(available_timezones())


def console_of(request: Request) -> Console:
    return request.app.state.console  # type: ignore[no-any-return]


def render(request: Request, template: str, status: int = 200, **context: Any) -> Response:
    console = console_of(request)
    signed: Signed | None = getattr(request.state, "signed", None)
    zone = console.zone(signed)
    role = signed.user.role if signed else None
    base = {
        "signed": signed,
        "user": signed.user if signed else None,
        "csrf_token": signed.session.csrf if signed else "",
        "can": lambda permission: role is not None and role.can(Permission(permission)),
        "t": lambda value: format_time(value, zone),
        "zone": zone.key,
        "f": field_of,
    }
    return request.app.state.templates.TemplateResponse(  # type: ignore[no-any-return]
        request, template, {**base, **context}, status_code=status
    )


def error_page(request: Request, status: int, message: str) -> Response:
    return render(request, "error.html", status=status, status_code=status, message=message)


def signed_of(request: Request) -> Signed:
    signed: Signed | None = request.state.signed
    assert signed is not None  # the guard let the request through
    return signed


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    settings = console_of(request).settings
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(settings.session_lifetime_secs),
        httponly=True,
        samesite="strict",
        secure=settings.tls,
        path="/",
    )


def _safe_next(target: str | None) -> str:
    """Only a path on this site (an open redirect would hand the session to a phishing page)."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/alerts"


# --- login -------------------------------------------------------------------------------


@router.get("/login")
async def login_page(request: Request, next: str = "/alerts") -> Response:
    token = csrf.new_token()
    response = render(request, "login.html", login_csrf=token, next=_safe_next(next))
    response.set_cookie(
        csrf.LOGIN_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=console_of(request).settings.tls,
        path="/",
    )
    return response


async def authenticate(console: Console, name: str, password: str, address: str) -> tuple[Any, str]:
    """(user or None, why not): throttling, then the password; every outcome is audited."""
    settings = console.settings
    by_name, by_address = await console.audit.failed_logins(
        name[:64], address, settings.login_window_secs
    )
    limit = settings.login_max_failures
    if by_name >= limit or by_address >= 4 * limit:
        await console.audit.record(
            AuditEntry(actor=name[:64], action="login_throttled", target=name[:64], address=address)
        )
        minutes = int(settings.login_window_secs // 60)
        return None, f"too many failed logins: try again in up to {minutes} minutes"
    user = await console.users.get(name)
    usable = user is not None and not user.disabled
    if not verify_password(user.password_hash if usable and user else None, password):
        await console.audit.record(
            AuditEntry(actor=name[:64], action="login_failed", target=name[:64], address=address),
            refresh="wait_for",
        )
        return None, "wrong user name or password"
    assert user is not None
    if needs_rehash(user.password_hash):
        await console.users.set_password(user.name, password, user.name)
    await console.audit.record(
        AuditEntry(
            actor=user.name, role=user.role.value, action="login", target=user.name, address=address
        )
    )
    return user, ""


@router.post("/login")
async def login(request: Request) -> Response:
    console = console_of(request)
    form = await request.form()
    name = str(form.get("username", "")).strip().lower()
    password = str(form.get("password", ""))
    target = _safe_next(str(form.get("next", "")))
    address = client_address(request)
    user, problem = await authenticate(console, name, password, address)
    if user is None:
        token = csrf.new_token()
        status = 429 if problem.startswith("too many") else 401
        response = render(
            request,
            "login.html",
            status=status,
            login_csrf=token,
            next=target,
            error=problem,
            username=name[:64],
        )
        response.set_cookie(
            csrf.LOGIN_COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=console.settings.tls,
            path="/",
        )
        return response
    previous: Signed | None = request.state.signed
    if previous is not None:  # logging in again replaces the session, never adds one
        await console.sessions.end(previous.token)
    token, _session = await console.sessions.create(user.name, address)
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(request, response, token)
    response.delete_cookie(csrf.LOGIN_COOKIE, path="/")
    return response


async def end_session(request: Request) -> None:
    """Log the request's user out (the session is deleted) and audit it."""
    console = console_of(request)
    signed = signed_of(request)
    await console.sessions.end(signed.token)
    await console.audit.record(
        AuditEntry(
            actor=signed.user.name,
            role=signed.user.role.value,
            action="logout",
            target=signed.user.name,
            address=client_address(request),
        )
    )


@router.post("/logout")
async def logout(request: Request) -> Response:
    await end_session(request)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/")
async def home(request: Request) -> Response:
    signed = signed_of(request)
    role = signed.user.role
    if role.can(Permission.READ_ALERTS):
        return RedirectResponse("/alerts", status_code=303)
    return RedirectResponse("/health" if role.can(Permission.READ_HEALTH) else "/account", 303)


# --- the queue ---------------------------------------------------------------------------


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


# --- one alert ---------------------------------------------------------------------------


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


# --- suppressions ------------------------------------------------------------------------


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


# --- entities ----------------------------------------------------------------------------


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


# --- health ------------------------------------------------------------------------------


@router.get("/health")
async def health_page(request: Request, signed: HealthReader) -> Response:
    health = await anyio.to_thread.run_sync(read_health, console_of(request).config)
    return render(
        request, "health.html", health=health, epoch=lambda seconds: _epoch_text(seconds, request)
    )


def _epoch_text(seconds: float | None, request: Request) -> str:
    if not seconds:
        return ""
    moment = datetime.fromtimestamp(seconds, UTC).isoformat()
    return format_time(moment, console_of(request).zone(request.state.signed))


@router.post("/health/deadletters/resubmit")
async def resubmit_deadletter(request: Request, signed: Resubmitter) -> Response:
    console = console_of(request)
    form = await request.form()
    partition, offset = str(form.get("partition", "")), str(form.get("offset", ""))
    if not (partition.isdigit() and offset.isdigit()):
        raise HTTPException(400, "partition and offset are numbers")
    try:
        topic, reason = await anyio.to_thread.run_sync(
            resubmit, console.config.kafka, int(partition), int(offset)
        )
    except ResubmitError as error:
        raise HTTPException(400, str(error)) from None
    await console.audit.record(
        AuditEntry(
            actor=signed.user.name,
            role=signed.user.role.value,
            action="deadletter.resubmit",
            target=f"{partition}:{offset}",
            after=topic,
            detail=f"dead-lettered for: {reason}",
            address=client_address(request),
        )
    )
    return RedirectResponse("/health", status_code=303)


# --- audit -------------------------------------------------------------------------------


@router.get("/audit")
async def audit_page(
    request: Request,
    signed: AuditReader,
    actor: str = "",
    action: str = "",
    target: str = "",
    before: str = "",
) -> Response:
    entries = await console_of(request).audit.page(
        actor=actor[:64] or None,
        action=action[:64] or None,
        target=target[:256] or None,
        before=before[:40] or None,
    )
    older = ""
    if entries:
        older = urlencode(
            {
                "actor": actor,
                "action": action,
                "target": target,
                "before": entries[-1]["@timestamp"],
            }
        )
    return render(
        request,
        "audit.html",
        entries=entries,
        actor=actor,
        action=action,
        target=target,
        older=older,
    )


# --- account and users -------------------------------------------------------------------


@router.get("/account")
async def account_page(request: Request) -> Response:
    return render(request, "account.html", zones=ZONES)


@router.post("/account")
async def account_change(request: Request) -> Response:
    console = console_of(request)
    signed = signed_of(request)
    form = await request.form()
    zone = str(form.get("timezone", ""))
    if zone and zone not in ZONES:
        raise HTTPException(400, "unknown time zone")
    await console.users.set_timezone(signed.user.name, zone or None, signed.user.name)
    await console.audit.record(
        AuditEntry(
            actor=signed.user.name,
            role=signed.user.role.value,
            action="user.timezone",
            target=signed.user.name,
            field="timezone",
            before=signed.user.timezone,
            after=zone or None,
            address=client_address(request),
        )
    )
    return RedirectResponse("/account", status_code=303)


@router.get("/users")
async def users_page(request: Request, signed: UserManager) -> Response:
    users = await console_of(request).users.all()
    return render(request, "users.html", users=users, roles=[r.value for r in Role])


@router.post("/users")
async def add_user(request: Request, signed: UserManager) -> Response:
    console = console_of(request)
    form = await request.form()
    name = str(form.get("name", "")).strip().lower()
    try:
        role = parse_role(str(form.get("role", "")))
        agency = str(form.get("agency", "")).strip() or None
        user = await console.users.add(
            name, role, agency, str(form.get("password", "")), signed.user.name
        )
    except (ValueError, UserError, PasswordRejected) as error:
        users = await console.users.all()
        return render(
            request,
            "users.html",
            status=400,
            users=users,
            roles=[r.value for r in Role],
            error=str(error),
        )
    await console.audit.record(
        AuditEntry(
            actor=signed.user.name,
            role=signed.user.role.value,
            action="user.add",
            target=user.name,
            after=f"{user.role} {user.agency or ''}".strip(),
            organization=user.agency,
            address=client_address(request),
        )
    )
    return RedirectResponse("/users", status_code=303)


@router.post("/users/{name}/disable")
async def disable_user(request: Request, signed: UserManager, name: str) -> Response:
    await set_user_disabled(
        console_of(request),
        signed.user.name,
        signed.user.role.value,
        name,
        True,
        client_address(request),
    )
    return RedirectResponse("/users", status_code=303)


@router.post("/users/{name}/enable")
async def enable_user(request: Request, signed: UserManager, name: str) -> Response:
    await set_user_disabled(
        console_of(request),
        signed.user.name,
        signed.user.role.value,
        name,
        False,
        client_address(request),
    )
    return RedirectResponse("/users", status_code=303)


async def set_user_disabled(
    console: Console, actor: str, role: str, name: str, disabled: bool, address: str
) -> None:
    """Disable (ending every session of the user at once) or enable an account, audited."""
    try:
        await console.users.set_disabled(name, disabled, actor)
    except UserError as error:
        raise HTTPException(404, str(error)) from None
    if disabled:
        await console.sessions.revoke_user(name)
    await console.audit.record(
        AuditEntry(
            actor=actor,
            role=role,
            action="user.disable" if disabled else "user.enable",
            target=name,
            field="disabled",
            before=not disabled,
            after=disabled,
            address=address,
        )
    )
