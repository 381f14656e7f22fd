"""The web application: one guard in front of every route, security headers on every answer.

The guard (an application-wide dependency, so no route can be added without it) loads the
session from its cookie, re-reads the user (a disabled user is signed out at once, on every
console process), refuses anonymous requests except to the login page and static files, and
checks the CSRF token of every state-changing request. Pages and the JSON API share it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Annotated, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from elasticsearch import AsyncElasticsearch
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from socpipe.console import csrf
from socpipe.console.audit import AuditLog
from socpipe.console.roles import Permission
from socpipe.console.scope import Scope, ScopedAlerts
from socpipe.console.sessions import Session, SessionStore
from socpipe.console.settings import ConsoleSettings
from socpipe.console.suppressions import SuppressionStore
from socpipe.console.users import User, UserStore
from socpipe.core.config import Config

log = logging.getLogger(__name__)

SESSION_COOKIE = "socpipe_session"
PACKAGE = resources.files("console")
#: No inline script or style anywhere: scripts and styles come from /static only.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
#: Reachable without a session.
PUBLIC_PATHS = ("/login", "/api/v1/login", "/static/", "/favicon.ico")


class NotSignedIn(Exception):
    """No valid session: pages redirect to the login page, the API answers 401."""


@dataclass
class Signed:
    """The signed-in user of a request, and their session."""

    user: User
    session: Session
    token: str

    @property
    def zone(self) -> ZoneInfo | None:
        if not self.user.timezone:
            return None
        try:
            return ZoneInfo(self.user.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            return None


class Console:
    """What every request needs: the settings, the Elasticsearch client and the stores."""

    def __init__(
        self, settings: ConsoleSettings, config: Config, client: AsyncElasticsearch
    ) -> None:
        self.settings = settings
        self.config = config
        self.client = client
        indices = settings.indices
        self.users = UserStore(client, indices.users)
        self.sessions = SessionStore(
            client, indices.sessions, settings.session_lifetime_secs, settings.session_idle_secs
        )
        self.audit = AuditLog(client, indices.audit)
        self.suppressions = SuppressionStore(client, indices.suppressions, self.audit)

    def alerts(self, user: User) -> ScopedAlerts:
        """The only way to the alerts and events: through the user's scope."""
        return ScopedAlerts(self.client, self.settings.indices, Scope.of(user))

    def zone(self, signed: Signed | None) -> ZoneInfo:
        return (signed.zone if signed else None) or self.settings.zone


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""


def is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


async def guard(request: Request) -> None:
    """Runs before every route (see the module docstring)."""
    console: Console = request.app.state.console
    path = request.url.path
    request.state.signed = None
    token = request.cookies.get(SESSION_COOKIE, "")
    if token:
        session = await console.sessions.lookup(token)
        if session is not None:
            user = await console.users.get(session.user)
            if user is None or user.disabled:
                await console.sessions.end(token)
            else:
                request.state.signed = Signed(user, session, token)
    public = any(path == p or (p.endswith("/") and path.startswith(p)) for p in PUBLIC_PATHS)
    if request.state.signed is None and not public:
        raise NotSignedIn()
    if csrf.needs_token(request.method) and not _json_login(request):
        await _check_csrf(request)


def _json_login(request: Request) -> bool:
    """The API's login takes JSON only: a page on another site cannot send that (it would need
    a CORS preflight, which the console never grants), so it needs no CSRF token."""
    kind = request.headers.get("content-type", "")
    return request.url.path == "/api/v1/login" and kind.startswith("application/json")


async def _check_csrf(request: Request) -> None:
    signed: Signed | None = request.state.signed
    presented = request.headers.get(csrf.HEADER)
    if presented is None and _is_form(request):
        form = await request.form()
        value = form.get(csrf.FORM_FIELD)
        presented = value if isinstance(value, str) else None
    if request.url.path == "/login" or signed is None:
        # The login form (before a session exists, or to switch user): the double-submit
        # cookie the form was served with.
        expected: str | None = request.cookies.get(csrf.LOGIN_COOKIE)
    else:
        expected = signed.session.csrf
    if not csrf.tokens_match(expected, presented):
        raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")


def _is_form(request: Request) -> bool:
    kind = request.headers.get("content-type", "")
    return kind.startswith(("application/x-www-form-urlencoded", "multipart/form-data"))


def require(permission: Permission) -> Any:
    """A route dependency: the signed-in user must hold ``permission`` (403 otherwise)."""

    async def check(request: Request) -> Signed:
        signed: Signed | None = request.state.signed
        if signed is None:
            raise NotSignedIn()
        if not signed.user.role.can(permission):
            raise HTTPException(403, f"your role ({signed.user.role}) cannot do this")
        return signed

    return Depends(check)


AlertReader = Annotated[Signed, require(Permission.READ_ALERTS)]
Triager = Annotated[Signed, require(Permission.TRIAGE)]
SuppressionReader = Annotated[Signed, require(Permission.READ_SUPPRESSIONS)]
SuppressionWriter = Annotated[Signed, require(Permission.SUPPRESS)]
HealthReader = Annotated[Signed, require(Permission.READ_HEALTH)]
Resubmitter = Annotated[Signed, require(Permission.RESUBMIT)]
AuditReader = Annotated[Signed, require(Permission.READ_AUDIT)]
UserManager = Annotated[Signed, require(Permission.MANAGE_USERS)]


class SecurityHeaders(BaseHTTPMiddleware):
    def __init__(self, app: Any, tls: bool) -> None:
        super().__init__(app)
        self.tls = tls

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        headers = response.headers
        headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        headers["X-Content-Type-Options"] = "nosniff"
        headers["Referrer-Policy"] = "same-origin"
        headers["X-Frame-Options"] = "DENY"
        if not request.url.path.startswith("/static/"):
            headers["Cache-Control"] = "no-store"
        if self.tls:
            headers["Strict-Transport-Security"] = "max-age=31536000"
        return response


def templates() -> Jinja2Templates:
    environment = Environment(
        loader=FileSystemLoader(str(PACKAGE / "templates")),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return Jinja2Templates(env=environment)


def format_time(value: Any, zone: ZoneInfo) -> str:
    """A document's UTC time in the reader's zone: ``2026-03-03 17:15:32 +07``."""
    if not isinstance(value, str) or not value:
        return ""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is None:
        return value
    local = moment.astimezone(zone)
    offset = local.strftime("%z")
    short = offset[:3] if offset.endswith("00") else f"{offset[:3]}:{offset[3:]}"
    return local.strftime("%Y-%m-%d %H:%M:%S ") + short


def create_app(console: Console) -> FastAPI:
    from socpipe.console import api, pages

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            await console.sessions.purge_expired()
        except Exception as error:  # the console starts even if Elasticsearch is still away
            log.warning("could not purge expired sessions: %s", error)
        yield
        await console.client.close()

    app = FastAPI(
        title="socpipe console",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        dependencies=[Depends(guard)],
        lifespan=lifespan,
    )
    app.state.console = console
    app.state.templates = templates()
    app.add_middleware(SecurityHeaders, tls=console.settings.tls)
    app.mount("/static", StaticFiles(directory=str(PACKAGE / "static")), name="static")
    app.include_router(pages.router)
    app.include_router(api.router, prefix="/api/v1")

    @app.exception_handler(NotSignedIn)
    async def not_signed_in(request: Request, _error: NotSignedIn) -> Response:
        if is_api(request):
            return JSONResponse({"error": "not signed in"}, status_code=401)
        target = request.url.path
        if request.url.query:
            target += f"?{request.url.query}"
        if request.headers.get("hx-request"):
            return Response(status_code=401, headers={"HX-Redirect": "/login"})
        return RedirectResponse(f"/login?next={_quote(target)}", status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        if is_api(request):
            return JSONResponse({"error": error.detail}, status_code=error.status_code)
        return pages.error_page(request, error.status_code, str(error.detail))

    return app


def _quote(path: str) -> str:
    return quote(path, safe="/")
