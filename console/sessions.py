"""Server-side sessions in Elasticsearch, shared by every console process.

The browser holds only a random token (256 bits) in an HttpOnly cookie; the index holds its
SHA-256, so someone who can read the index still cannot present a session. A session ends at
``lifetime`` after login, after ``idle`` without use, at logout, and when its user is disabled
(``revoke_user``; every request also re-reads the user, so a disabled account is refused even
by a console that did not do the disabling).
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from elasticsearch import AsyncElasticsearch, NotFoundError, helpers

from socpipe.console.elastic import iso, now
from socpipe.detectors.suppression import parse_time

TOKEN_BYTES = 32
#: last_seen is written at most this often: a write per page view would cost more than it tells.
TOUCH_SECS = 60.0
MAX_TOKEN_CHARS = 128


@dataclass(frozen=True)
class Session:
    id: str
    user: str
    csrf: str
    created: datetime
    expires: datetime
    last_seen: datetime


def session_id(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class SessionStore:
    def __init__(
        self, client: AsyncElasticsearch, index: str, lifetime_secs: float, idle_secs: float
    ) -> None:
        self.client = client
        self.index = index
        self.lifetime = timedelta(seconds=lifetime_secs)
        self.idle = timedelta(seconds=idle_secs)

    async def create(self, user: str, address: str) -> tuple[str, Session]:
        """A new session for ``user``: (the cookie's token, the session)."""
        token = secrets.token_urlsafe(TOKEN_BYTES)
        moment = now()
        session = Session(
            id=session_id(token),
            user=user,
            csrf=secrets.token_urlsafe(TOKEN_BYTES),
            created=moment,
            expires=moment + self.lifetime,
            last_seen=moment,
        )
        await self.client.create(
            index=self.index,
            id=session.id,
            document={
                "user": user,
                "csrf": session.csrf,
                "created": iso(moment),
                "expires": iso(session.expires),
                "last_seen": iso(moment),
                "address": address[:128],
            },
            refresh="wait_for",
        )
        return token, session

    async def lookup(self, token: str) -> Session | None:
        """The live session of a cookie's token, or None (unknown, expired, idle too long)."""
        if not token or len(token) > MAX_TOKEN_CHARS:
            return None
        ident = session_id(token)
        try:
            source = (await self.client.get(index=self.index, id=ident))["_source"]
        except NotFoundError:
            return None
        session = Session(
            id=ident,
            user=str(source["user"]),
            csrf=str(source["csrf"]),
            created=parse_time(source["created"], "session created"),
            expires=parse_time(source["expires"], "session expires"),
            last_seen=parse_time(source["last_seen"], "session last_seen"),
        )
        moment = now()
        if moment >= session.expires or moment - session.last_seen >= self.idle:
            await self._delete(ident)
            return None
        if (moment - session.last_seen).total_seconds() >= TOUCH_SECS:
            await self.client.update(index=self.index, id=ident, doc={"last_seen": iso(moment)})
        return session

    async def end(self, token: str) -> None:
        await self._delete(session_id(token))

    async def _delete(self, ident: str) -> None:
        with contextlib.suppress(NotFoundError):
            await self.client.delete(index=self.index, id=ident, refresh="wait_for")

    async def revoke_user(self, user: str) -> int:
        """End every session of ``user`` (disabled, or password changed); how many ended."""
        await self.client.indices.refresh(index=self.index)
        ids = [
            hit["_id"]
            async for hit in helpers.async_scan(
                self.client, index=self.index, query={"query": {"term": {"user": user}}}
            )
        ]
        if ids:
            await helpers.async_bulk(
                self.client,
                ({"_op_type": "delete", "_index": self.index, "_id": ident} for ident in ids),
                raise_on_error=False,
                refresh="wait_for",
            )
        return len(ids)

    async def purge_expired(self) -> None:
        """Delete sessions past their lifetime (the index stays small)."""
        await self.client.indices.refresh(index=self.index)
        ids = [
            hit["_id"]
            async for hit in helpers.async_scan(
                self.client,
                index=self.index,
                query={"query": {"range": {"expires": {"lt": iso(now())}}}},
            )
        ]
        if ids:
            await helpers.async_bulk(
                self.client,
                ({"_op_type": "delete", "_index": self.index, "_id": ident} for ident in ids),
                raise_on_error=False,
            )
