"""The alert queue's filter: what the page's controls and the query box ask for, as clauses
for console/scope.py, plus grouping, paging and export rows.

The same ``QueueFilter`` comes from a page's query string, an API call or the command line, so
a bookmark, a script and an export of "what I am looking at" always agree.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from socpipe.console.elastic import field as field_of
from socpipe.console.querylang import QueryError, compile_query
from socpipe.console.triage import OPEN_STATUSES, STATUSES

LEVELS = ("informational", "low", "medium", "high", "critical")
#: Grouping choices: the name in the URL -> the field counted.
GROUPS = {"rule": "rule.name", "host": "host.name", "agency": "organization.id"}
GROUP_SIZE = 50
PAGE_SIZES = (25, 50, 100, 200)
MAX_VALUE_CHARS = 256
#: Columns of a CSV export (a JSON export has whole alerts, without the matched events).
EXPORT_COLUMNS = (
    "alert.id",
    "@timestamp",
    "alert.detected",
    "rule.level",
    "rule.name",
    "rule.id",
    "alert.status",
    "alert.resolution",
    "alert.assignee",
    "organization.id",
    "host.name",
    "user.name",
    "source.ip",
    "destination.ip",
    "url.original",
    "threat.technique.id",
)


class FilterError(ValueError):
    """A filter value that cannot be used (with which parameter and why)."""


@dataclass(frozen=True)
class QueueFilter:
    levels: tuple[str, ...] = ()
    #: Empty: open alerts (every status but closed), unless ``include_closed``.
    statuses: tuple[str, ...] = ()
    include_closed: bool = False
    assignee: str = ""
    agency: str = ""
    rule: str = ""
    host: str = ""
    since: str = ""
    until: str = ""
    query: str = ""
    group: str = ""
    size: int = 50
    after: str = ""
    compiled: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_params(cls, params: Mapping[str, Any], multi: Mapping[str, list[str]]) -> QueueFilter:
        """From a query string: ``multi`` holds the repeated parameters (level, status)."""

        def one(name: str) -> str:
            value = str(params.get(name, "") or "").strip()
            if len(value) > MAX_VALUE_CHARS and name != "q":
                raise FilterError(f"{name}: longer than {MAX_VALUE_CHARS} characters")
            return value

        levels = tuple(v for v in multi.get("level", []) if v)
        statuses = tuple(v for v in multi.get("status", []) if v)
        for value in levels:
            if value not in LEVELS:
                raise FilterError(f"level {value!r:.40}: choose from {', '.join(LEVELS)}")
        for value in statuses:
            if value not in STATUSES:
                raise FilterError(f"status {value!r:.40}: choose from {', '.join(STATUSES)}")
        group = one("group")
        if group and group not in GROUPS:
            raise FilterError(f"group {group!r:.40}: choose from {', '.join(GROUPS)}")
        size_text = one("size") or "50"
        if not size_text.isdigit() or int(size_text) not in PAGE_SIZES:
            raise FilterError(f"size: choose from {', '.join(map(str, PAGE_SIZES))}")
        since, until = one("since"), one("until")
        for name, value in (("since", since), ("until", until)):
            if value:
                _check_time(name, value)
        built = cls(
            levels=levels,
            statuses=statuses,
            include_closed=one("closed") in ("1", "true", "on"),
            assignee=one("assignee"),
            agency=one("agency"),
            rule=one("rule"),
            host=one("host"),
            since=since,
            until=until,
            query=one("q"),
            group=group,
            size=int(size_text),
            after=one("after"),
        )
        try:
            return replace(built, compiled=compile_query(built.query) if built.query else None)
        except QueryError as error:
            raise FilterError(f"query: {error}") from None

    def clauses(self) -> list[dict[str, Any]]:
        """The filter as Elasticsearch clauses (all required); the scope is added apart."""
        clauses: list[dict[str, Any]] = []
        if self.statuses:
            clauses.append({"terms": {"alert.status": list(self.statuses)}})
        elif not self.include_closed:
            clauses.append({"terms": {"alert.status": list(OPEN_STATUSES)}})
        if self.levels:
            clauses.append({"terms": {"rule.level": list(self.levels)}})
        if self.assignee == "-":
            clauses.append({"bool": {"must_not": [{"exists": {"field": "alert.assignee"}}]}})
        elif self.assignee:
            clauses.append({"term": {"alert.assignee": self.assignee}})
        for name, value in (
            ("organization.id", self.agency),
            ("rule.id", self.rule),
            ("host.name", self.host),
        ):
            if value:
                clauses.append({"term": {name: value}})
        if self.since or self.until:
            bounds = {}
            if self.since:
                bounds["gte"] = self.since
            if self.until:
                bounds["lt"] = self.until
            clauses.append({"range": {"@timestamp": bounds}})
        if self.compiled is not None:
            clauses.append(self.compiled)
        return clauses

    def params(self, **changes: Any) -> list[tuple[str, str]]:
        """The filter as query-string pairs (links to the next page, a grouping, an export)."""
        current = replace(self, **changes) if changes else self
        pairs: list[tuple[str, str]] = [("level", v) for v in current.levels]
        pairs += [("status", v) for v in current.statuses]
        for name, value in (
            ("closed", "1" if current.include_closed else ""),
            ("assignee", current.assignee),
            ("agency", current.agency),
            ("rule", current.rule),
            ("host", current.host),
            ("since", current.since),
            ("until", current.until),
            ("q", current.query),
            ("group", current.group),
            ("size", "" if current.size == 50 else str(current.size)),
            ("after", current.after),
        ):
            if value:
                pairs.append((name, value))
        return pairs

    def search_after(self) -> list[Any] | None:
        if not self.after:
            return None
        return decode_cursor(self.after)

    def group_aggregation(self) -> dict[str, Any] | None:
        if not self.group:
            return None
        return {
            "groups": {
                "terms": {"field": GROUPS[self.group], "size": GROUP_SIZE, "missing": "(none)"},
                "aggs": {"levels": {"terms": {"field": "rule.level", "size": len(LEVELS)}}},
            }
        }


def _check_time(name: str, value: str) -> None:
    if value.startswith("now"):
        try:
            compile_query(f"@timestamp >= {value}")
        except QueryError:
            raise FilterError(f"{name}: {value!r:.40} is not a time like now-24h") from None
        return
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise FilterError(f"{name}: {value!r:.40} is not an ISO 8601 time") from None


def encode_cursor(sort_values: list[Any]) -> str:
    raw = json.dumps(sort_values, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str) -> list[Any]:
    try:
        padded = text + "=" * (-len(text) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError):
        raise FilterError("after: not a page cursor") from None
    if (
        not isinstance(values, list)
        or len(values) > 4
        or not all(isinstance(v, str | int | float) for v in values)
    ):
        raise FilterError("after: not a page cursor")
    return values


def export_row(source: dict[str, Any]) -> list[str]:
    row = []
    for name in EXPORT_COLUMNS:
        value = field_of(source, name)
        if isinstance(value, list):
            value = " ".join(str(item) for item in value)
        row.append("" if value is None else _csv_safe(str(value)))
    return row


def _csv_safe(value: str) -> str:
    """A cell a spreadsheet will not run as a formula (log content is attacker-written)."""
    if value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
