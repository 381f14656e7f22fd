"""What reached the national center, for people: one incident's ledger, and a day's volume
per destination. The records come from the forwarding index (read by socpipe.sinks.ledger);
this module only lays them out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, TextIO

from socpipe.core.levels import LEVELS
from socpipe.forwarding.ledger import OUTCOMES

#: Agencies named per destination in a daily report (the rest are summed).
TOP_AGENCIES = 10


class Volume(Protocol):
    """One destination's records of one day (socpipe.sinks.ledger.DestinationVolume)."""

    @property
    def records(self) -> int: ...
    @property
    def by_outcome(self) -> Mapping[str, int]: ...
    @property
    def delivered_by_level(self) -> Mapping[str, int]: ...
    @property
    def delivered_by_agency(self) -> Mapping[str, int]: ...


def render_incident(
    incident_id: str,
    incident: Mapping[str, Any] | None,
    entries: Sequence[Mapping[str, Any]],
    out: TextIO,
    alert_id: str | None = None,
) -> None:
    """Every destination's outcomes for one incident, oldest first."""
    if alert_id is not None:
        print(f"alert {alert_id} belongs to incident {incident_id}", file=out)
    if incident is not None:
        print(
            f"incident {incident_id}: {incident.get('incident.level')}"
            f" {incident.get('incident.title')} ({incident.get('incident.alert_count')} alerts,"
            f" {incident.get('organization.id')}, {incident.get('incident.first_seen')}"
            f" .. {incident.get('incident.last_seen')})",
            file=out,
        )
    else:
        print(f"incident {incident_id} (not in the incidents index)", file=out)
    if not entries:
        print(
            "  no forwarding record: no destination has had it yet (not due at their level,"
            " or still waiting in Kafka: see `socpipe forward status`)",
            file=out,
        )
        return
    header = f"  {'time':<24} {'destination':<20} {'level':<13} {'outcome':<13} detail"
    print(header, file=out)
    for entry in entries:
        detail = entry.get("forward.reason") or entry.get("forward.receipt") or ""
        attempts = int(entry.get("forward.attempts") or 0)
        if attempts > 1:
            detail = f"{detail} (after {attempts} attempts)"
        print(
            f"  {entry.get('@timestamp', ''):<24} {entry.get('forward.destination', ''):<20}"
            f" {entry.get('incident.level', ''):<13} {entry.get('forward.outcome', ''):<13}"
            f" {detail}",
            file=out,
        )


def render_daily(day: str, volumes: Mapping[str, Volume], out: TextIO) -> None:
    """The day's records per destination: by outcome, and what was delivered by level and
    by agency."""
    print(f"forwarding on {day} (UTC), from the ledger", file=out)
    if not volumes:
        print("  no forwarding record that day", file=out)
        return
    for name in sorted(volumes):
        volume = volumes[name]
        outcomes = ", ".join(
            f"{outcome} {volume.by_outcome.get(outcome, 0):,}"
            for outcome in OUTCOMES
            if volume.by_outcome.get(outcome)
        )
        print(f"  {name}: {volume.records:,} records ({outcomes})", file=out)
        levels = ", ".join(
            f"{level} {volume.delivered_by_level[level]:,}"
            for level in reversed(LEVELS)
            if volume.delivered_by_level.get(level)
        )
        print(f"    delivered by level   {levels or 'none'}", file=out)
        ranked = sorted(volume.delivered_by_agency.items(), key=lambda item: (-item[1], item[0]))
        agencies = ", ".join(f"{agency} {count:,}" for agency, count in ranked[:TOP_AGENCIES])
        if len(ranked) > TOP_AGENCIES:
            rest = sum(count for _, count in ranked[TOP_AGENCIES:])
            agencies += f", {len(ranked) - TOP_AGENCIES} more {rest:,}"
        print(f"    delivered by agency  {agencies or 'none'}", file=out)
