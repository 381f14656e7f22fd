"""Correlation state: windows over the matches of base rules, driven by event time.

How a window behaves (documented for analysts in docs/correlation.md):

* Every match of a referenced rule is kept as a small entry (time, event id, value) in the
  state of its group (the values of ``group-by``). Events lacking a group-by field do not
  contribute: grouping them under "missing" would join unrelated sources.
* Conditions with only a lower bound (``gte: 5``) fire as soon as some window of ``timespan``
  holds enough entries; the entries that fired are consumed, so the next alert needs fresh ones.
* Other conditions (``lt``, ``eq``, ranges) can only be judged on a final count: a window opens
  at a group's first entry and is judged once event time has passed its end (or at the end of a
  scan).
* Event time, not arrival time, decides: entries are kept sorted, so events up to
  ``lateness`` seconds older than the newest one of their group still land in the right
  window. Older ones are counted as late and left out. Lateness is judged per group, so
  sources whose clocks or delivery lag each other (or files scanned one after another) do not
  make each other late; expiry follows the newest event time seen overall. An event stamped
  more than ``max_future`` seconds ahead of the wall clock is left out too (and counted): a
  single host with a clock years ahead would otherwise expire everybody's state.
* Memory is bounded: state expires with its timespan; a group holds at most
  ``max_entries_per_group`` entries; the engine holds at most ``max_groups`` groups,
  ``max_entries`` entries and ``max_bytes`` bytes in all. Bytes are estimated as entries and
  groups are made, from the sizes of what they keep (an entry keeps its event id or, in a
  scan, the line it was read from; a value it counts; a group its group-by values), so a
  flood of huge values is capped like a flood of small ones. Beyond a cap the least recently
  active groups are shed, counted, and logged once when shedding starts and once when the
  state is back under its caps.
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import sys
import time
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import groupby
from operator import attrgetter
from typing import Any, Final, Protocol

from socpipe.core.event import Event, format_timestamp
from socpipe.detectors.alert import ENTITY_FIELDS, Alert, anchored_alert_id
from socpipe.detectors.correlation_rules import CorrelationRule
from socpipe.detectors.sweep import DEFAULT_INTERVAL_SECONDS, DEFAULT_MINIMUM_EVENTS, SweepSchedule

log = logging.getLogger(__name__)

DEFAULT_LATENESS_SECONDS = 300.0
DEFAULT_MAX_GROUPS = 100_000
#: Entries (remembered matches) over all groups: ~170 bytes each with their event id.
DEFAULT_MAX_ENTRIES = 500_000
DEFAULT_MAX_ENTRIES_PER_GROUP = 1_000
#: Estimated bytes of correlation state at most (see ``entry_bytes`` and ``_group_bytes``).
DEFAULT_MAX_BYTES = 256 << 20
#: Shedding ends, and is logged as ended, once every measure is back under this share of its cap.
SHEDDING_ENDS_BELOW: Final = 0.9
#: An entry's own memory beyond what it refers to: the object with its slots, its time and its
#: slot in the group's list (measured with tracemalloc, tests/test_correlation_memory.py).
ENTRY_BYTES: Final = 152
#: A group's own memory beyond its values and entries: the object, its entries list, its key
#: tuples and its place in the engine's ordered dict.
GROUP_BYTES: Final = 400
DEFAULT_MAX_FUTURE_SECONDS = 3600.0
#: How many contributing event ids (and member alert ids) an alert lists (the count is
#: always exact).
MAX_LISTED_EVENTS: Final = 100
#: How many counted events an alert shows with their raw line, by default.
DEFAULT_EVIDENCE_LINES = 10
#: A kept raw line is cut to this many characters: lines may be 256 KiB, and a group may keep
#: ``evidence_lines`` of them for as long as its window lasts.
MAX_EVIDENCE_LINE_CHARS: Final = 2048
#: Expired state is swept at least this many matches apart (more when there are more groups).
SWEEP_EVERY = DEFAULT_MINIMUM_EVENTS


@dataclass
class CorrelationStats:
    """Counters the daemon exports as metrics and the scan summary prints."""

    observed: int = 0
    late: int = 0
    missing_group_field: int = 0
    bad_timestamp: int = 0
    future: int = 0
    groups_evicted: int = 0
    entries_dropped: int = 0
    alerts: int = 0
    #: Estimated bytes of state now (a gauge, unlike the counters above).
    state_bytes: int = 0


class DeferredIds(Protocol):
    """Ids for events that arrive without one (a scan's lines, ``collectors.files.LineEventIds``):
    an entry keeps what its event's id is made of and asks for the id only when it is needed
    (an alert lists it, or entries of one second are ordered). Most counted matches (every
    successful login, for "brute force then success") expire without ever needing it."""

    def __call__(self, event: Event) -> None:
        """Give the event its ``event.id`` now."""

    def identity(self, event: Event) -> tuple[Any, ...]:
        """What the event's id is made of (small: kept per entry instead of the id)."""

    def id_of(self, identity: tuple[Any, ...]) -> str:
        """The id ``identity`` makes."""


class _Entry:
    """One counted match. Never changed once made; equal only to itself, ordered by ``<``.

    A plain class rather than a frozen dataclass: compiled, a frozen dataclass is built
    through its generic ``__init__`` at 0.85 µs, on every match a correlation counts.
    """

    __slots__ = (
        "_event_id",
        "_pending",
        "agency",
        "from_alert",
        "line",
        "rule_id",
        "size",
        "time",
        "value",
    )

    def __init__(
        self,
        time: float,
        event_id: str | None,
        rule_id: str,
        value: str | None,
        agency: str,
        size: int,
        pending: tuple[DeferredIds, tuple[Any, ...]] | None = None,
        line: str | None = None,
        from_alert: bool = False,
    ) -> None:
        self.time = time
        self._event_id = event_id
        self._pending = pending
        self.rule_id = rule_id
        self.value = value
        self.agency = agency
        #: The counted event's raw line (cut), kept while the group holds few entries.
        self.line = line
        #: The counted "event" is a correlation alert (chained correlations): its id is an
        #: alert id, listed apart from event ids.
        self.from_alert = from_alert
        #: Estimated bytes this entry keeps alive, fixed when it is made.
        self.size = size

    @property
    def event_id(self) -> str:
        """The id of the counted event, made on first use when it was deferred."""
        if self._event_id is None:
            assert self._pending is not None, "an entry has an id or what makes it"
            ids, identity = self._pending
            self._event_id = ids.id_of(identity)
            self._pending = None
        return self._event_id

    def __lt__(self, other: _Entry) -> bool:
        """Entries are kept in this order: by time, and among equal times (syslog has
        one-second resolution, so a burst shares its timestamp) by identity, so a replayed
        entry is found by bisection instead of a walk over the whole burst. Compared field
        by field: a key tuple built per comparison (a dozen per insertion into a burst) was
        a third of the detect stage's CPU on a stream of bursts."""
        if self.time != other.time:
            return self.time < other.time
        mine, theirs = self.event_id, other.event_id
        if mine != theirs:
            return mine < theirs
        return self.rule_id < other.rule_id

    def same_place(self, other: _Entry) -> bool:
        """The same match counted again (a replayed event): neither orders before the other."""
        return (
            self.time == other.time
            and self.event_id == other.event_id
            and self.rule_id == other.rule_id
        )


_TIME_OF: Final = attrgetter("time")


@dataclass(slots=True)
class _Group:
    """One group's state. Kept small (slots, nothing allocated until needed): the engine may
    hold a hundred thousand of them."""

    rule: CorrelationRule
    key: tuple[str, ...]
    entries: list[_Entry] = field(default_factory=list)
    #: Entity fields of the latest event, kept only where an alert can come later (windows
    #: judged at close); lower-bound conditions fire on the event at hand and take its fields.
    entities: dict[str, Any] | None = None
    newest: float = float("-inf")
    #: temporal_ordered only: the rules this group may hold entries of (a superset; refreshed
    #: when a search finds no chain). Spares the search while a rule of the chain is missing,
    #: the usual state of a group that sees only successful logins.
    rules_seen: set[str] | None = None
    #: Estimated bytes of the group with its entries and entities.
    size: int = 0

    def entities_with(self, event: Event | None) -> dict[str, Any]:
        entities = _entities(event) if event is not None else dict(self.entities or {})
        entities.update(zip(self.rule.group_by, self.key, strict=True))
        return entities


def _entities(event: Event) -> dict[str, Any]:
    return {name: event[name] for name in ENTITY_FIELDS if name in event}


class _Reference:
    """One correlation as seen from one rule it references, worked out once: the event fields
    of its group-by and value for that rule's events, and how its windows count."""

    __slots__ = ("group_fields", "latest_per_value", "monotone", "rule", "value_field")

    def __init__(self, rule: CorrelationRule, rule_id: str) -> None:
        self.rule = rule
        self.group_fields = tuple(rule.group_field(name, rule_id) for name in rule.group_by)
        self.value_field = (
            rule.group_field(rule.value_field, rule_id) if rule.value_field is not None else None
        )
        self.monotone = rule.condition.monotone
        #: Only distinct values (rules, for temporal) count, so only a value's latest entry.
        self.latest_per_value = rule.type in ("value_count", "temporal")


def event_time(event: Event) -> float | None:
    try:
        return datetime.fromisoformat(str(event["@timestamp"])).timestamp()
    except (KeyError, ValueError):
        return None


def _iso(seconds: float) -> str:
    return format_timestamp(datetime.fromtimestamp(seconds, UTC))


class CorrelationEngine:
    """Feeds base-rule matches into correlation windows and returns the correlation alerts."""

    def __init__(
        self,
        rules: list[CorrelationRule],
        lateness: float = DEFAULT_LATENESS_SECONDS,
        max_groups: int = DEFAULT_MAX_GROUPS,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        max_entries_per_group: int = DEFAULT_MAX_ENTRIES_PER_GROUP,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_future: float = DEFAULT_MAX_FUTURE_SECONDS,
        clock: Callable[[], float] = time.time,
        deferred_ids: DeferredIds | None = None,
        sweep_interval_secs: float = DEFAULT_INTERVAL_SECONDS,
        evidence_lines: int = DEFAULT_EVIDENCE_LINES,
    ) -> None:
        """``sweep_interval_secs``: closed windows are judged at least this often when events
        are few (a live stream); infinite judges them by the count of events alone, so that
        where their alerts fall in a scan's output does not depend on how fast it ran."""
        self.rules = rules
        self.deferred_ids = deferred_ids
        #: Raw lines an alert shows at most: an entry keeps its line only while its group
        #: holds fewer entries than this (memory: at most this many lines per group).
        self.evidence_lines = evidence_lines
        #: Referenced rules whose matches raise alerts of their own (set by the detector from
        #: the rules' ``generate``): a correlation lists those alerts as its members.
        self.alerting_rule_ids: frozenset[str] = frozenset()
        self.lateness = lateness
        self.max_groups = max_groups
        self.max_entries = max_entries
        self.max_entries_per_group = max_entries_per_group
        self.max_bytes = max_bytes
        self._entries = 0
        self._bytes = 0
        self._shed_since: int | None = None
        self.max_future = max_future
        self.clock = clock
        self.stats = CorrelationStats()
        self._by_referenced: dict[str, list[_Reference]] = defaultdict(list)
        for rule in rules:
            for rule_id in dict.fromkeys(rule.rule_ids):
                self._by_referenced[rule_id].append(_Reference(rule, rule_id))
        #: Groups by (correlation rule id, *group-by values), least recently active first.
        self._groups: OrderedDict[tuple[str, ...], _Group] = OrderedDict()
        self._newest_time = float("-inf")
        self._sweeps = SweepSchedule(SWEEP_EVERY, sweep_interval_secs)

    @property
    def referenced_rule_ids(self) -> frozenset[str]:
        return frozenset(self._by_referenced)

    @property
    def horizon_secs(self) -> float:
        """How far back matches can still count: the longest timespan plus the lateness."""
        if not self.rules:
            return 0.0
        return max(rule.timespan for rule in self.rules) + self.lateness

    @property
    def group_count(self) -> int:
        return len(self._groups)

    @property
    def entry_count(self) -> int:
        return self._entries

    @property
    def state_bytes(self) -> int:
        """Estimated bytes of all correlation state."""
        return self._bytes

    def observe(self, rule_id: str, event: Event) -> list[Alert]:
        """Record that ``rule_id`` matched ``event``; the correlation alerts this completes."""
        references = self._by_referenced.get(rule_id)
        if not references:
            return []
        moment = event_time(event)
        if moment is None:
            self.stats.bad_timestamp += 1
            return []
        self.stats.observed += 1
        if moment > self.clock() + self.max_future:
            self.stats.future += 1
            return []
        self._newest_time = max(self._newest_time, moment)
        alerts: list[Alert] = []
        for reference in references:
            group = self._group_for(reference, event)
            if group is None:
                continue
            if moment < group.newest - self.lateness:
                self.stats.late += 1
                continue
            group.newest = max(group.newest, moment)
            before, size_before = len(group.entries), group.size
            keep_line = before < self.evidence_lines
            entry = _entry(reference, rule_id, event, moment, self.deferred_ids, keep_line)
            self._add(reference, group, entry)
            if not reference.monotone:
                entities = _entities(event)
                group.size += _dict_bytes(entities) - _dict_bytes(group.entities)
                group.entities = entities
            elif (alert := _fire_monotone(group, event, self._evidence())) is not None:
                alerts.append(alert)
            self._entries += len(group.entries) - before
            self._bytes += group.size - size_before
        while self._entries > self.max_entries and len(self._groups) > 1:
            self._evict_oldest(f"the cap of {self.max_entries:,} entries")
        # The bytes cap may take the last group too: one group of huge values must not stay.
        while self._bytes > self.max_bytes and self._groups:
            self._evict_oldest(f"the cap of {self.max_bytes:,} bytes")
        if self._sweeps.due(len(self._groups)):
            alerts.extend(self._sweep(self._newest_time - self.lateness))
        self.stats.state_bytes = self._bytes
        return self._chain(alerts)

    def _evidence(self) -> _Evidence:
        return _Evidence(self.alerting_rule_ids, self.evidence_lines)

    def flush(self) -> list[Alert]:
        """End of input: judge every open window as final and forget all state."""
        alerts = self._sweep(float("inf"))
        self._groups.clear()
        self._entries = 0
        self._bytes = self.stats.state_bytes = 0
        return self._chain(alerts)

    def _chain(self, alerts: list[Alert]) -> list[Alert]:
        """Correlation alerts are matches too: feed them to correlations that reference them."""
        if not alerts:
            return alerts
        self.stats.alerts += len(alerts)
        chained: list[Alert] = []
        for alert in alerts:
            chained.extend(self.observe(alert.rule.id, as_event(alert)))
        return alerts + chained

    def _group_for(self, reference: _Reference, event: Event) -> _Group | None:
        values = []
        for field_name in reference.group_fields:
            value = event.get(field_name)
            if value is None or value == "":
                self.stats.missing_group_field += 1
                return None
            values.append(value if type(value) is str else str(value))
        rule = reference.rule
        # One flat tuple: a nested one would be hashed anew on every lookup.
        key = (rule.id, *values)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group(rule, key[1:])
            group.size = GROUP_BYTES + sum(sys.getsizeof(value) for value in values)
            self._bytes += group.size
            if len(self._groups) > self.max_groups:
                self._evict_oldest(f"the cap of {self.max_groups:,} groups")
        else:
            self._groups.move_to_end(key)
        return group

    def _evict_oldest(self, cap: str) -> None:
        """Drop the least recently active group; say so when shedding starts."""
        _, evicted = self._groups.popitem(last=False)
        self._entries -= len(evicted.entries)
        self._bytes -= evicted.size
        self.stats.groups_evicted += 1
        if self._shed_since is None:
            self._shed_since = self.stats.groups_evicted - 1
            log.warning(
                "correlation state reached %s: shedding the least recently active groups"
                " (state groups=%d entries=%d bytes=%d; first shed: rule %s). Matches of shed"
                " groups are forgotten: raise the cap or narrow the rules' group-by.",
                cap,
                len(self._groups),
                self._entries,
                self._bytes,
                evicted.rule.id,
            )

    def _end_shedding_when_under_caps(self) -> None:
        if self._shed_since is None:
            return
        if (
            self._bytes < self.max_bytes * SHEDDING_ENDS_BELOW
            and self._entries < self.max_entries * SHEDDING_ENDS_BELOW
            and len(self._groups) < self.max_groups * SHEDDING_ENDS_BELOW
        ):
            log.warning(
                "correlation state back under its caps after shedding %d groups"
                " (state groups=%d entries=%d bytes=%d)",
                self.stats.groups_evicted - self._shed_since,
                len(self._groups),
                self._entries,
                self._bytes,
            )
            self._shed_since = None

    def _add(self, reference: _Reference, group: _Group, entry: _Entry) -> None:
        entries = group.entries
        if reference.latest_per_value:
            # The latest entry of a value is the one that can still take part in future
            # windows, so older ones go. A replayed event has its value at the same time, so
            # it stops here too.
            for position, existing in enumerate(entries):
                if existing.value == entry.value:
                    if existing.time >= entry.time:
                        return
                    group.size -= existing.size
                    del entries[position]
                    break
        if not entries or entries[-1].time < entry.time:
            entries.append(entry)  # the usual case: events arrive in time order
        elif entries[-1] < entry:
            entries.append(entry)  # a burst within one second, in identity order
        else:
            position = bisect.bisect_left(entries, entry)
            if entry.event_id and entries[position].same_place(entry):
                # A replayed event (the daemon re-reads a batch after a failure) counts once.
                return
            entries.insert(position, entry)
        group.size += entry.size
        if group.rule.type == "temporal_ordered":
            if group.rules_seen is None:
                group.rules_seen = set()
            group.rules_seen.add(entry.rule_id)
        if len(entries) > self.max_entries_per_group:
            group.size -= entries[0].size
            del entries[0]
            self.stats.entries_dropped += 1

    def _sweep(self, watermark: float) -> list[Alert]:
        """Judge closed windows of final-count conditions and drop expired state."""
        alerts: list[Alert] = []
        evidence = self._evidence()
        for key in list(self._groups):
            group = self._groups[key]
            rule = group.rule
            before, size_before = len(group.entries), group.size
            if not rule.condition.monotone:
                while group.entries and group.entries[0].time + rule.timespan < watermark:
                    if (alert := _judge_first_window(group, evidence)) is not None:
                        alerts.append(alert)
            else:
                cutoff = watermark - rule.timespan
                if group.entries and group.entries[0].time < cutoff:
                    kept = [entry for entry in group.entries if entry.time >= cutoff]
                    group.size -= _entries_bytes(group.entries[: len(group.entries) - len(kept)])
                    group.entries = kept
            self._entries -= before - len(group.entries)
            self._bytes -= size_before - group.size
            if not group.entries:
                del self._groups[key]
                self._bytes -= group.size
        self._end_shedding_when_under_caps()
        self.stats.state_bytes = self._bytes
        return alerts


def _entry(
    reference: _Reference,
    rule_id: str,
    event: Event,
    time: float,
    deferred_ids: DeferredIds | None,
    keep_line: bool,
) -> _Entry:
    rule = reference.rule
    if rule.type == "value_count":
        assert reference.value_field is not None
        raw = event.get(reference.value_field)
        value = None if raw is None else str(raw)
    elif rule.type == "temporal":
        value = rule_id
    else:
        value = None
    agency = str(event.get("organization.id", "unknown"))
    line: str | None = None
    if keep_line:
        original = event.get("event.original")
        if type(original) is str:
            line = original[:MAX_EVIDENCE_LINE_CHARS]
    # What the entry alone keeps alive once the event is gone; the rule id and (in a scan) the
    # agency are shared, but counting them errs on the safe side.
    size = ENTRY_BYTES + sys.getsizeof(agency)
    if rule.type == "value_count" and value is not None:
        size += sys.getsizeof(value)
    if line is not None:
        size += sys.getsizeof(line)
    event_id = event.get("event.id") or event.get("alert.id")
    if event_id is None and deferred_ids is not None:
        identity = deferred_ids.identity(event)
        size += sys.getsizeof(identity) + sum(sys.getsizeof(part) for part in identity)
        return _Entry(time, None, rule_id, value, agency, size, (deferred_ids, identity), line)
    identifier = str(event_id or "")
    size += sys.getsizeof(identifier)
    from_alert = "alert.id" in event
    return _Entry(time, identifier, rule_id, value, agency, size, None, line, from_alert)


def _entries_bytes(entries: list[_Entry]) -> int:
    return sum(entry.size for entry in entries)


def _dict_bytes(values: dict[str, Any] | None) -> int:
    """A group's copy of entity fields: the dict and its values (the keys are shared)."""
    if values is None:
        return 0
    return sys.getsizeof(values) + sum(sys.getsizeof(value) for value in values.values())


def _measure(rule: CorrelationRule, entries: list[_Entry]) -> int:
    if rule.type == "event_count":
        return len(entries)
    return len({entry.value for entry in entries if entry.value is not None})


class _Evidence:
    """What an alert says about its members beyond their count: which counted matches raised
    alerts of their own, and how many raw lines to show."""

    __slots__ = ("alerting_rule_ids", "lines")

    def __init__(self, alerting_rule_ids: frozenset[str], lines: int) -> None:
        self.alerting_rule_ids = alerting_rule_ids
        self.lines = lines


def _fire_monotone(group: _Group, event: Event, evidence: _Evidence) -> Alert | None:
    """Alert on the first window that meets a lower-bound condition, consuming its entries."""
    rule, entries = group.rule, group.entries
    if not rule.condition.holds(len(entries)):
        # No window holds more entries (or distinct values) than the group: nothing to find.
        return None
    if rule.type == "temporal_ordered":
        if group.rules_seen is None or not group.rules_seen.issuperset(rule.rule_ids):
            return None
        chain = _ordered_chain(rule, entries)
        if chain is None:
            group.rules_seen = {entry.rule_id for entry in entries}
            return None
        return _consume(group, chain, event, evidence)
    times = [entry.time for entry in entries]
    for start in range(len(entries)):
        end = bisect.bisect_right(times, times[start] + rule.timespan)
        window = entries[start:end]
        if rule.condition.holds(_measure(rule, window)):
            return _consume(group, window, event, evidence)
    return None


def _ordered_chain(rule: CorrelationRule, entries: list[_Entry]) -> list[_Entry] | None:
    """Entries of the referenced rules in their listed order (equal times count as in order),
    all within the timespan.

    One pass in time order: for each step of the listed order, the partial chain reaching it
    that started latest (the one most likely to still fit the timespan). A group may hold a
    thousand entries of the first rule while waiting for the second; trying every start would
    cost a million steps per event.
    """
    steps = rule.rule_ids
    best: list[list[_Entry] | None] = [None] * len(steps)
    for _, tied in groupby(entries, key=_TIME_OF):
        same_time = list(tied)
        for step, rule_id in enumerate(steps):
            for entry in same_time:
                if entry.rule_id != rule_id:
                    continue
                if step == 0:
                    best[0] = [entry]
                    continue
                before = best[step - 1]
                if before is None or any(entry is taken for taken in before):
                    continue
                current = best[step]
                if current is None or before[0].time >= current[0].time:
                    best[step] = [*before, entry]
        chain = best[-1]
        if chain is not None and chain[-1].time - chain[0].time <= rule.timespan:
            return chain
        best[-1] = None
    return None


def _judge_first_window(group: _Group, evidence: _Evidence) -> Alert | None:
    """Close the window opened by the group's oldest entry; alert if its final count holds."""
    rule, entries = group.rule, group.entries
    end = entries[0].time + rule.timespan
    window = [entry for entry in entries if entry.time <= end]
    group.entries = entries[len(window) :]
    group.size -= _entries_bytes(window)
    if rule.condition.holds(_measure(rule, window)):
        return _alert(group, window, group.entities_with(None), evidence)
    return None


def _consume(group: _Group, used: list[_Entry], event: Event, evidence: _Evidence) -> Alert:
    used_ids = {id(entry) for entry in used}
    group.entries = [entry for entry in group.entries if id(entry) not in used_ids]
    group.size -= _entries_bytes(used)
    return _alert(group, used, group.entities_with(event), evidence)


def _members(
    entries: list[_Entry], evidence: _Evidence
) -> tuple[list[str], list[str], list[Event]]:
    """(member event ids, member alert ids, member events with their raw line), each listed
    in time order and capped. Member alerts are the correlation alerts counted (chaining)
    and the alerts the counted rule matches raised themselves (rules with ``generate``)."""
    event_ids: list[str] = []
    alert_ids: list[str] = []
    shown: list[Event] = []
    alerting = evidence.alerting_rule_ids
    for entry in entries:
        if entry.from_alert:
            if len(alert_ids) < MAX_LISTED_EVENTS:
                alert_ids.append(entry.event_id)
            continue
        listed = len(event_ids) < MAX_LISTED_EVENTS
        if listed:
            event_ids.append(entry.event_id)
        if entry.rule_id in alerting and len(alert_ids) < MAX_LISTED_EVENTS and entry.event_id:
            alert_ids.append(anchored_alert_id(entry.rule_id, entry.event_id))
        if entry.line is not None and len(shown) < evidence.lines:
            shown.append(
                {
                    "@timestamp": _iso(entry.time),
                    "event.id": entry.event_id,
                    "organization.id": entry.agency,
                    "event.original": entry.line,
                }
            )
    return event_ids, alert_ids, shown


def _alert(
    group: _Group, entries: list[_Entry], entities: dict[str, Any], evidence: _Evidence
) -> Alert:
    rule = group.rule
    agencies = sorted({entry.agency for entry in entries})
    anchor = f"{rule.id}\x1f{group.key}\x1f{entries[0].event_id}\x1f{entries[0].time}"
    event_ids, alert_ids, shown = _members(entries, evidence)
    details: dict[str, Any] = {
        "correlation.type": rule.type,
        "correlation.group": dict(zip(rule.group_by, group.key, strict=True)),
        "correlation.count": len(entries),
        "correlation.condition": rule.condition.describe(),
        "correlation.timespan_seconds": rule.timespan,
        "correlation.rules": sorted({entry.rule_id for entry in entries}),
        "correlation.event_ids": event_ids,
        "correlation.alert_ids": alert_ids,
        "correlation.agencies": agencies,
    }
    if rule.type == "value_count":
        values = Counter(entry.value for entry in entries if entry.value is not None)
        details["correlation.field"] = rule.value_field
        details["correlation.distinct_values"] = len(values)
        details["correlation.values"] = sorted(values)[:MAX_LISTED_EVENTS]
    if aliases := _aliases(rule):
        details["correlation.aliases"] = aliases
    return Alert(
        id=hashlib.blake2b(anchor.encode(), digest_size=16).hexdigest(),
        rule=rule,
        timestamp=_iso(entries[-1].time),
        agency=agencies[0] if len(agencies) == 1 else "multiple",
        entities=entities,
        events=tuple(shown),
        first_seen=_iso(entries[0].time),
        last_seen=_iso(entries[-1].time),
        details=details,
    )


def _aliases(rule: CorrelationRule) -> list[str]:
    """``name=event.field`` for each alias the alert's group and values are named by: what
    the forwarder's minimisation needs to know that ``user`` holds ``user.name`` values."""
    names = [*rule.group_by, *([rule.value_field] if rule.value_field else [])]
    return sorted(
        {
            f"{name}={source}"
            for name in names
            for rule_id in rule.rule_ids
            if (source := rule.group_field(name, rule_id)) != name
        }
    )


def as_event(alert: Alert) -> Event:
    """A correlation alert in the shape of an event, for correlations that reference it."""
    document = alert.to_dict()
    document.update(alert.details.get("correlation.group", {}))
    document["event.id"] = alert.id
    return document
