"""Console users, stored in Elasticsearch (document id: the user name) so that every console
process sees the same accounts."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from elasticsearch import AsyncElasticsearch, ConflictError, NotFoundError

from socpipe.console.elastic import iso, now
from socpipe.console.passwords import hash_password
from socpipe.console.roles import Role, parse_role

NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
AGENCY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
MAX_USERS_LISTED = 10_000


class UserError(ValueError):
    """A user that cannot be added or changed, with the reason."""


@dataclass(frozen=True)
class User:
    name: str
    role: Role
    agency: str | None
    disabled: bool = False
    timezone: str | None = None
    password_hash: str = ""

    @classmethod
    def from_source(cls, source: dict[str, Any]) -> User:
        return cls(
            name=str(source["name"]),
            role=parse_role(str(source["role"])),
            agency=source.get("agency") or None,
            disabled=bool(source.get("disabled", False)),
            timezone=source.get("timezone") or None,
            password_hash=str(source.get("password_hash", "")),
        )


def check_user(name: str, role: Role, agency: str | None) -> None:
    if not NAME.fullmatch(name):
        raise UserError(
            f"user name {name!r:.80}: use 1-64 of a-z, 0-9, '.', '_', '-' (starting with a"
            " letter or digit)"
        )
    if role.agency_bound and not agency:
        raise UserError(f"role {role} needs --agency (the agency whose alerts the user sees)")
    if not role.agency_bound and agency:
        raise UserError(f"role {role} sees every agency: give no --agency")
    if agency and not AGENCY.fullmatch(agency):
        raise UserError(f"agency id {agency!r:.80} is not a valid id")


class UserStore:
    def __init__(self, client: AsyncElasticsearch, index: str) -> None:
        self.client = client
        self.index = index

    async def add(self, name: str, role: Role, agency: str | None, password: str, by: str) -> User:
        check_user(name, role, agency)
        moment = iso(now())
        document = {
            "name": name,
            "role": role.value,
            "agency": agency,
            "password_hash": hash_password(password),
            "disabled": False,
            "created": moment,
            "changed": moment,
            "changed_by": by,
        }
        try:
            await self.client.create(index=self.index, id=name, document=document, refresh=True)
        except ConflictError:
            raise UserError(f"user {name!r} exists already") from None
        return User.from_source(document)

    async def get(self, name: str) -> User | None:
        if not NAME.fullmatch(name):
            return None
        try:
            response = await self.client.get(index=self.index, id=name)
        except NotFoundError:
            return None
        return User.from_source(response["_source"])

    async def all(self) -> list[User]:
        response = await self.client.search(
            index=self.index,
            query={"match_all": {}},
            sort=[{"name": "asc"}],
            size=MAX_USERS_LISTED,
        )
        return [User.from_source(hit["_source"]) for hit in response["hits"]["hits"]]

    async def _change(self, name: str, changes: dict[str, Any], by: str) -> None:
        try:
            await self.client.update(
                index=self.index,
                id=name,
                doc={**changes, "changed": iso(now()), "changed_by": by},
                refresh=True,
            )
        except NotFoundError:
            raise UserError(f"no user {name!r}") from None

    async def set_disabled(self, name: str, disabled: bool, by: str) -> None:
        await self._change(name, {"disabled": disabled}, by)

    async def set_password(self, name: str, password: str, by: str) -> None:
        await self._change(name, {"password_hash": hash_password(password)}, by)

    async def set_timezone(self, name: str, timezone: str | None, by: str) -> None:
        await self._change(name, {"timezone": timezone}, by)

    async def any_admin(self) -> bool:
        response = await self.client.count(
            index=self.index, query={"term": {"role": Role.ADMIN.value}}
        )
        return bool(response["count"])
