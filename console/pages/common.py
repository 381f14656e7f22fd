"""What every page shares: rendering with the signed-in user's context, the session
cookie, and reading the console and user off a request."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response

from socpipe.console.elastic import field as field_of
from socpipe.console.roles import Permission
from socpipe.console.web import SESSION_COOKIE, Console, Signed, format_time


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


def safe_next(target: str | None) -> str:
    """Only a path on this site (an open redirect would hand the session to a phishing page)."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/alerts"
