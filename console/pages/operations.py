"""Operations: the pipeline's health with the dead-letter browser, the audit log, users."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

import anyio
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from socpipe.console.audit import AuditEntry
from socpipe.console.health import ResubmitError, read_health, resubmit
from socpipe.console.pages.common import console_of, render
from socpipe.console.passwords import PasswordRejected
from socpipe.console.roles import Role, parse_role
from socpipe.console.users import UserError
from socpipe.console.web import (
    AuditReader,
    Console,
    HealthReader,
    Resubmitter,
    UserManager,
    client_address,
    format_time,
)

router = APIRouter()


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
