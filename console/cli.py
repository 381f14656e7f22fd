"""The terminal side of the console: `socpipe console`, `socpipe users ...` and
`socpipe alerts ...`. Thin: each command calls the same stores, scope, triage service and
audit as the web pages (run with asyncio), and only formats what they return."""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TextIO, TypeVar

from elasticsearch import AsyncElasticsearch

from socpipe.console.audit import AuditEntry, AuditLog
from socpipe.console.elastic import connect_async
from socpipe.console.elastic import field as field_of
from socpipe.console.loading import load_alerts
from socpipe.console.passwords import PasswordRejected
from socpipe.console.queue import FilterError, QueueFilter
from socpipe.console.roles import Permission, parse_role
from socpipe.console.scope import Scope, ScopedAlerts
from socpipe.console.sessions import SessionStore
from socpipe.console.settings import ConsoleSettings, console_settings
from socpipe.console.triage import Change, Conflict, NotFound, TriageError, TriageService
from socpipe.console.users import User, UserError, UserStore
from socpipe.core.config import Config
from socpipe.core.errors import SocpipeError

T = TypeVar("T")
USER_ENV = "SOCPIPE_CONSOLE_USER"


class CommandError(SocpipeError):
    """A command that cannot be carried out; the message is for the user."""


def _run(config: Config, work: Callable[[AsyncElasticsearch, ConsoleSettings], Awaitable[T]]) -> T:
    settings = console_settings(config)

    async def main() -> T:
        client = connect_async(config.elasticsearch)
        try:
            return await work(client, settings)
        finally:
            await client.close()

    return asyncio.run(main())


def cli_actor() -> str:
    """Who changed something from the terminal, for the audit log."""
    try:
        login = getpass.getuser()
    except (KeyError, OSError):
        login = str(os.getuid())
    return f"cli:{login}"


def read_password(stdin: TextIO, confirm: bool = True) -> str:
    """From standard input when it is not a terminal (one line), else prompted twice."""
    if not stdin.isatty():
        return stdin.readline().rstrip("\r\n")
    first = getpass.getpass("password: ")
    if confirm and getpass.getpass("again: ") != first:
        raise CommandError("the passwords differ")
    return first


# --- users -------------------------------------------------------------------------------


def users_add(config: Config, name: str, role_name: str, agency: str | None, password: str) -> User:
    async def work(client: AsyncElasticsearch, settings: ConsoleSettings) -> User:
        try:
            role = parse_role(role_name)
            user = await UserStore(client, settings.indices.users).add(
                name, role, agency, password, cli_actor()
            )
        except (ValueError, PasswordRejected) as error:
            raise CommandError(str(error)) from None
        await AuditLog(client, settings.indices.audit).record(
            AuditEntry(
                actor=cli_actor(),
                action="user.add",
                target=name,
                after=f"{role} {agency or ''}".strip(),
                organization=agency,
            )
        )
        return user

    return _run(config, work)


def users_list(config: Config) -> list[User]:
    async def work(client: AsyncElasticsearch, settings: ConsoleSettings) -> list[User]:
        return await UserStore(client, settings.indices.users).all()

    return _run(config, work)


def users_disable(config: Config, name: str) -> int:
    """Disable a user and end their sessions; how many sessions ended."""

    async def work(client: AsyncElasticsearch, settings: ConsoleSettings) -> int:
        try:
            await UserStore(client, settings.indices.users).set_disabled(name, True, cli_actor())
        except UserError as error:
            raise CommandError(str(error)) from None
        ended = await _sessions(client, settings).revoke_user(name)
        await AuditLog(client, settings.indices.audit).record(
            AuditEntry(
                actor=cli_actor(),
                action="user.disable",
                target=name,
                field="disabled",
                before=False,
                after=True,
                detail=f"{ended} sessions ended",
            )
        )
        return ended

    return _run(config, work)


def users_passwd(config: Config, name: str, password: str) -> None:
    async def work(client: AsyncElasticsearch, settings: ConsoleSettings) -> None:
        try:
            await UserStore(client, settings.indices.users).set_password(
                name, password, cli_actor()
            )
        except (UserError, PasswordRejected) as error:
            raise CommandError(str(error)) from None
        ended = await _sessions(client, settings).revoke_user(name)
        await AuditLog(client, settings.indices.audit).record(
            AuditEntry(
                actor=cli_actor(),
                action="user.password",
                target=name,
                detail=f"{ended} sessions ended",
            )
        )

    _run(config, work)


def _sessions(client: AsyncElasticsearch, settings: ConsoleSettings) -> SessionStore:
    return SessionStore(
        client,
        settings.indices.sessions,
        settings.session_lifetime_secs,
        settings.session_idle_secs,
    )


def format_users(users: list[User]) -> str:
    rows: list[tuple[str, ...]] = [("name", "role", "agency", "state")]
    rows += [
        (u.name, u.role.value, u.agency or "", "disabled" if u.disabled else "active")
        for u in users
    ]
    return _table(rows)


# --- alerts ------------------------------------------------------------------------------


async def _acting(
    client: AsyncElasticsearch, settings: ConsoleSettings, name: str | None, needed: Permission
) -> tuple[User | None, Scope]:
    """The console user a command acts as, and their scope; without one (list and show
    only), the operator's: every agency."""
    if not name:
        if needed is Permission.TRIAGE:
            raise CommandError(f"say which console user you are: --user NAME (or ${USER_ENV})")
        return None, Scope(None)
    user = await UserStore(client, settings.indices.users).get(name)
    if user is None or user.disabled:
        raise CommandError(f"no active console user {name!r}")
    if not user.role.can(needed):
        raise CommandError(f"user {name} ({user.role}) cannot do this")
    return user, Scope.of(user)


def alerts_list(
    config: Config, params: dict[str, list[str]], user: str | None
) -> tuple[int, list[dict[str, Any]]]:
    async def work(
        client: AsyncElasticsearch, settings: ConsoleSettings
    ) -> tuple[int, list[dict[str, Any]]]:
        _, scope = await _acting(client, settings, user, Permission.READ_ALERTS)
        try:
            chosen = QueueFilter.from_params({k: v[-1] for k, v in params.items() if v}, params)
        except FilterError as error:
            raise CommandError(str(error)) from None
        response = await ScopedAlerts(client, settings.indices, scope).search(
            chosen.clauses(), size=chosen.size, source_excludes=["events", "alert.history"]
        )
        hits = response["hits"]["hits"]
        return response["hits"]["total"]["value"], [hit["_source"] for hit in hits]

    return _run(config, work)


def format_alert_rows(total: int, alerts: list[dict[str, Any]]) -> str:
    rows: list[tuple[str, ...]] = [
        ("time", "level", "status", "assignee", "agency", "rule", "host", "id")
    ]
    for a in alerts:
        rows.append(
            tuple(
                str(field_of(a, name) or "")
                for name in (
                    "@timestamp",
                    "rule.level",
                    "alert.status",
                    "alert.assignee",
                    "organization.id",
                    "rule.name",
                    "host.name",
                    "alert.id",
                )
            )
        )
    return f"{_table(rows)}\n{len(alerts)} of {total} alerts"


def alerts_show(config: Config, alert_id: str, user: str | None) -> dict[str, Any]:
    async def work(client: AsyncElasticsearch, settings: ConsoleSettings) -> dict[str, Any]:
        _, scope = await _acting(client, settings, user, Permission.READ_ALERTS)
        hit = await ScopedAlerts(client, settings.indices, scope).get(alert_id)
        if hit is None:
            raise CommandError(f"no alert {alert_id}")
        return {"version": hit.version, **hit.source}

    return _run(config, work)


def alerts_set(
    config: Config, alert_ids: list[str], change: Change, user: str | None, version: str | None
) -> str:
    """Apply a change as a console user; the same guard and audit as the pages."""

    async def work(client: AsyncElasticsearch, settings: ConsoleSettings) -> str:
        acting, scope = await _acting(client, settings, user, Permission.TRIAGE)
        assert acting is not None
        service = TriageService(
            ScopedAlerts(client, settings.indices, scope),
            AuditLog(client, settings.indices.audit),
            acting,
            "cli",
        )
        if len(alert_ids) == 1:
            try:
                hit = await service.apply(alert_ids[0], change, version)
            except NotFound:
                raise CommandError(f"no alert {alert_ids[0]}") from None
            except Conflict as conflict:
                raise CommandError(str(conflict)) from None
            return f"alert {hit.id}: saved (version {hit.version})"
        result = await service.apply_many([(ident, None) for ident in alert_ids], change)
        lines = [result.summary(), *map(str, result.conflicts)]
        lines += [f"not found: {ident}" for ident in result.not_found]
        return "\n".join(lines)

    try:
        return _run(config, work)
    except TriageError as error:
        raise CommandError(str(error)) from None


def alerts_load(config: Config, path: Path) -> str:
    async def work(client: AsyncElasticsearch, settings: ConsoleSettings) -> str:
        result = await load_alerts(client, settings.indices.alerts, path)
        await AuditLog(client, settings.indices.audit).record(
            AuditEntry(
                actor=cli_actor(),
                action="alerts.load",
                target=str(path)[:256],
                detail=f"created {result.created}, already present"
                f" {result.already_present}, problems {result.problem_count}",
            )
        )
        lines = [*result.problems]
        if result.problem_count > len(result.problems):
            lines.append(f"... and {result.problem_count - len(result.problems)} more problems")
        lines.append(
            f"{path}: {result.created} alerts loaded, {result.already_present} already present,"
            f" {result.problem_count} lines skipped"
        )
        return "\n".join(lines)

    return _run(config, work)


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [min(max(len(row[i]) for row in rows), 48) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell[:48].ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False)


def serve_console(
    config: Config, listen: str | None, tls_cert: str | None, tls_key: str | None
) -> None:
    from socpipe.console.server import serve

    settings = console_settings(config, listen, tls_cert, tls_key)
    scheme = "https" if settings.tls else "http"
    print(f"socpipe console on {scheme}://{settings.host}:{settings.port}/", file=sys.stderr)
    serve(config, settings)
