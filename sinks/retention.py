"""Retention of the daily event indices: whole days older than the SOC keeps are deleted.

Events go to one index per day precisely so that old days can be dropped whole, cheaply, on
any cluster: index lifecycle management is not available everywhere (the test distribution
has none). Only indices named exactly ``<events prefix><YYYY.MM.DD>`` are ever candidates;
the alerts index, with the analysts' triage, never is. Days after tomorrow are not deleted
but reported: they come from hosts whose clock is wrong, which the SOC wants to know about.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from elasticsearch import Elasticsearch

#: Names per delete request: explicit names (never wildcards, which clusters may refuse with
#: ``action.destructive_requires_name``), in batches that keep the URL short.
DELETE_BATCH = 50


@dataclass(frozen=True)
class RetentionPlan:
    #: Daily indices dated more than ``keep_days`` before today, oldest first.
    expired: list[str]
    #: Daily indices inside the retention period.
    kept: list[str]
    #: Daily indices dated after tomorrow: events from hosts with a wrong clock.
    future: list[str]
    #: Indices under the prefix whose name is not a date (left alone).
    unrecognised: list[str]


def plan_retention(names: Iterable[str], prefix: str, keep_days: int, today: date) -> RetentionPlan:
    """Sort index names by what retention does with them; ``today`` is the UTC date."""
    if keep_days < 1:
        raise ValueError("keep_days must be at least 1")
    oldest_kept = today - timedelta(days=keep_days)
    latest_expected = today + timedelta(days=1)
    plan = RetentionPlan([], [], [], [])
    # Zero-padded dates after one prefix: name order is date order, oldest first.
    for name in sorted(names):
        day = _index_day(name, prefix)
        if day is None:
            plan.unrecognised.append(name)
        elif day < oldest_kept:
            plan.expired.append(name)
        elif day > latest_expected:
            plan.future.append(name)
        else:
            plan.kept.append(name)
    return plan


def _index_day(name: str, prefix: str) -> date | None:
    if not name.startswith(prefix):
        return None
    suffix = name[len(prefix) :]
    try:
        day = datetime.strptime(suffix, "%Y.%m.%d").date()
    except ValueError:
        return None
    # strptime accepts "2026.3.3"; the daily index names are always zero-padded.
    return day if day.strftime("%Y.%m.%d") == suffix else None


def daily_indices(client: Elasticsearch, prefix: str) -> list[str]:
    """Every index (open or closed) whose name starts with ``prefix``, in no set order."""
    found = client.indices.get_alias(index=f"{prefix}*", expand_wildcards="open,closed")
    return list(found.body)


def delete_indices(client: Elasticsearch, names: list[str]) -> None:
    for start in range(0, len(names), DELETE_BATCH):
        client.indices.delete(index=",".join(names[start : start + DELETE_BATCH]))
