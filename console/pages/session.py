"""Logging in and out, and the user's own settings (time zone)."""

from __future__ import annotations

from typing import Any
from zoneinfo import available_timezones

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from socpipe.console import csrf
from socpipe.console.audit import AuditEntry
from socpipe.console.pages.common import (
    console_of,
    render,
    safe_next,
    set_session_cookie,
    signed_of,
)
from socpipe.console.passwords import needs_rehash, verify_password
from socpipe.console.roles import Permission
from socpipe.console.web import SESSION_COOKIE, Console, Signed, client_address

router = APIRouter()
ZONES = sorted(available_timezones())


@router.get("/login")
async def login_page(request: Request, next: str = "/alerts") -> Response:
    token = csrf.new_token()
    response = render(request, "login.html", login_csrf=token, next=safe_next(next))
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
    target = safe_next(str(form.get("next", "")))
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
