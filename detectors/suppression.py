"""Suppressions: "this rule on these entity values is benign until then", set by analysts.

A suppression names a rule id, one or more alert fields with the value each must have, and
an expiry (required, at most ``MAX_DAYS`` after it was made). An alert of that rule whose
fields all carry those values is not raised: it is counted against the suppression instead,
so the analyst sees how much it holds back. Expired or disabled suppressions stop applying at
once, whether or not the set has been reloaded.

This module is pure and fast (a dictionary lookup by rule id, then a few string compares):
the console stores suppressions in Elasticsearch, the daemon's detect stage reloads them
from there (daemon/suppression_feed.py) and `socpipe scan --suppressions FILE` reads an
exported set; all three use these types. Suppressions act on alerts, after detection:
correlation windows still count a suppressed single-event match (the evidence is the same;
only the analyst's queue is spared), and a correlation rule is suppressed by its own id.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from socpipe.core.errors import SocpipeError
from socpipe.detectors.alert import Alert

#: The longest a suppression may last: long enough for a planned change, short enough that
#: a forgotten one does not blind the SOC for good.
MAX_DAYS = 90
MAX_FIELDS = 20
MAX_VALUE_CHARS = 1024
MAX_REASON_CHARS = 2000
#: Suppressions one set may hold (a file or the index): each alert checks those of its rule.
MAX_SUPPRESSIONS = 10_000


class SuppressionError(SocpipeError, ValueError):
    """A suppression that cannot be used, with the reason (and where it came from)."""


def parse_time(value: Any, what: str) -> datetime:
    """An ISO 8601 time with an offset (``Z`` included), as UTC."""
    if not isinstance(value, str) or len(value) > 64:
        raise SuppressionError(f"{what}: expected an ISO 8601 time, got {value!r:.80}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise SuppressionError(f"{what}: not an ISO 8601 time: {value!r}") from None
    if parsed.tzinfo is None:
        raise SuppressionError(f"{what}: {value!r} has no time zone offset")
    return parsed.astimezone(UTC)


def iso(moment: datetime) -> str:
    """UTC, millisecond precision, with ``Z``: the form every socpipe document uses."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


@dataclass(frozen=True)
class Suppression:
    id: str
    rule_id: str
    #: (field, value) pairs; every one must hold on the alert.
    fields: tuple[tuple[str, str], ...]
    created: datetime
    expires: datetime
    reason: str = ""
    created_by: str = ""
    rule_name: str = ""
    disabled: bool = False

    def __post_init__(self) -> None:
        where = f"suppression {self.id or '(no id)'}"
        if not self.id or len(self.id) > 128:
            raise SuppressionError(f"{where}: an id of 1 to 128 characters is required")
        if not self.rule_id or len(self.rule_id) > 256:
            raise SuppressionError(f"{where}: a rule id is required")
        if not self.fields:
            raise SuppressionError(f"{where}: at least one field value is required")
        if len(self.fields) > MAX_FIELDS:
            raise SuppressionError(f"{where}: at most {MAX_FIELDS} fields")
        names = [name for name, _ in self.fields]
        if len(set(names)) != len(names):
            raise SuppressionError(f"{where}: a field is named twice")
        for name, value in self.fields:
            if not name or len(name) > 256 or not isinstance(value, str):
                raise SuppressionError(f"{where}: bad field {name!r:.80}")
            if len(value) > MAX_VALUE_CHARS:
                raise SuppressionError(f"{where}: value of {name} over {MAX_VALUE_CHARS} chars")
        if len(self.reason) > MAX_REASON_CHARS:
            raise SuppressionError(f"{where}: reason over {MAX_REASON_CHARS} characters")
        if self.expires <= self.created:
            raise SuppressionError(f"{where}: expires before it was made")
        if self.expires - self.created > timedelta(days=MAX_DAYS):
            raise SuppressionError(f"{where}: expires more than {MAX_DAYS} days after it was made")

    def active(self, now: datetime) -> bool:
        return not self.disabled and now < self.expires

    def matches(self, values: Mapping[str, Any]) -> bool:
        """Whether the alert fields ``values`` carry every value (a list: any element)."""
        for name, expected in self.fields:
            actual = values.get(name)
            if isinstance(actual, list):
                if not any(str(item) == expected for item in actual):
                    return False
            elif actual is None or str(actual) != expected:
                return False
        return True

    @classmethod
    def from_dict(cls, document: Mapping[str, Any], id: str | None = None) -> Suppression:
        """From the stored form (the console's index, an exported file); ``id`` overrides the
        document's own (Elasticsearch keeps it as ``_id``)."""
        ident = str(id if id is not None else document.get("id", ""))
        where = f"suppression {ident or '(no id)'}"
        raw_fields = document.get("fields")
        if not isinstance(raw_fields, list):
            raise SuppressionError(f"{where}: fields: expected a list of {{field, value}}")
        pairs = []
        for item in raw_fields[: MAX_FIELDS + 1]:
            if not isinstance(item, dict) or not isinstance(item.get("field"), str):
                raise SuppressionError(f"{where}: fields: expected {{field, value}} items")
            pairs.append((item["field"], str(item.get("value", ""))))
        return cls(
            id=ident,
            rule_id=str(document.get("rule.id", "")),
            fields=tuple(pairs),
            created=parse_time(document.get("created"), f"{where}: created"),
            expires=parse_time(document.get("expires"), f"{where}: expires"),
            reason=str(document.get("reason", "")),
            created_by=str(document.get("created_by", "")),
            rule_name=str(document.get("rule.name", "")),
            disabled=bool(document.get("disabled", False)),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "rule.id": self.rule_id,
            "rule.name": self.rule_name,
            "fields": [{"field": name, "value": value} for name, value in self.fields],
            "created": iso(self.created),
            "expires": iso(self.expires),
            "reason": self.reason,
            "created_by": self.created_by,
            "disabled": self.disabled,
        }


def alert_values(alert: Alert) -> dict[str, Any]:
    """The fields of an alert a suppression can name: its agency, entities, and for a
    correlation the fields it grouped by (without building the whole alert document)."""
    values: dict[str, Any] = {"organization.id": alert.agency, "rule.id": alert.rule.id}
    values.update(alert.entities)
    group = alert.details.get("correlation.group")
    if isinstance(group, dict):
        values.update(group)
    return values


@dataclass
class SuppressionHits:
    count: int = 0
    last: datetime | None = None


@dataclass
class Suppressor:
    """The suppressions in force and how often each held an alert back.

    ``replace`` swaps the whole set (a reload from another thread); ``take_hits`` hands the
    counts over for writing back and starts afresh. Both are safe beside ``suppressed``.
    """

    suppressions: list[Suppression] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._by_rule = _index(self.suppressions)
        self._hits: dict[str, SuppressionHits] = {}

    def replace(self, suppressions: Iterable[Suppression]) -> None:
        chosen = list(suppressions)
        by_rule = _index(chosen)
        with self._lock:
            self.suppressions, self._by_rule = chosen, by_rule

    def __len__(self) -> int:
        return len(self.suppressions)

    def match(self, alert: Alert, now: datetime | None = None) -> Suppression | None:
        """The active suppression that holds this alert back (counted), or None."""
        moment = now or datetime.now(UTC)
        suppression = self._holding(alert, moment)
        if suppression is not None:
            with self._lock:
                hits = self._hits.setdefault(suppression.id, SuppressionHits())
                hits.count += 1
                hits.last = moment
        return suppression

    def holds(self, alert: Alert, now: datetime | None = None) -> bool:
        """Whether an active suppression holds this alert back, without counting a hit (the
        detect stage re-reading history it counted the first time)."""
        return self._holding(alert, now or datetime.now(UTC)) is not None

    def _holding(self, alert: Alert, moment: datetime) -> Suppression | None:
        candidates = self._by_rule.get(alert.rule.id)
        if not candidates:
            return None
        values = alert_values(alert)
        for suppression in candidates:
            if suppression.active(moment) and suppression.matches(values):
                return suppression
        return None

    def filter(self, alerts: list[Alert], now: datetime | None = None) -> list[Alert]:
        """The alerts no suppression holds back."""
        if not self._by_rule or not alerts:
            return alerts
        return [alert for alert in alerts if self.match(alert, now) is None]

    def take_hits(self) -> dict[str, SuppressionHits]:
        with self._lock:
            hits, self._hits = self._hits, {}
        return hits

    def counts(self) -> Counter[str]:
        """Hits not yet taken, per suppression id (what a scan reports)."""
        with self._lock:
            return Counter({ident: hits.count for ident, hits in self._hits.items()})


def _index(suppressions: Iterable[Suppression]) -> dict[str, list[Suppression]]:
    by_rule: dict[str, list[Suppression]] = {}
    for suppression in suppressions:
        by_rule.setdefault(suppression.rule_id, []).append(suppression)
    return by_rule


def export_document(suppressions: Iterable[Suppression], exported: datetime) -> dict[str, Any]:
    """The file `socpipe scan --suppressions` reads (what the console's export writes)."""
    return {
        "exported": iso(exported),
        "suppressions": [suppression.to_dict() for suppression in suppressions],
    }


def load_file(path: Path, max_bytes: int = 16 * 1024 * 1024) -> list[Suppression]:
    """The suppressions of an exported file; every problem names the file and the entry."""
    try:
        if path.stat().st_size > max_bytes:
            raise SuppressionError(f"{path}: larger than {max_bytes} bytes")
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise SuppressionError(f"{path}: cannot read: {error}") from None
    except (ValueError, RecursionError) as error:
        raise SuppressionError(f"{path}: not JSON: {error}") from None
    items = document.get("suppressions") if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise SuppressionError(f"{path}: expected an object with a 'suppressions' list")
    if len(items) > MAX_SUPPRESSIONS:
        raise SuppressionError(f"{path}: more than {MAX_SUPPRESSIONS} suppressions")
    loaded = []
    for position, item in enumerate(items):
        if not isinstance(item, dict):
            raise SuppressionError(f"{path}: suppressions[{position}]: expected an object")
        try:
            loaded.append(Suppression.from_dict(item))
        except SuppressionError as error:
            raise SuppressionError(f"{path}: suppressions[{position}]: {error}") from None
    return loaded
