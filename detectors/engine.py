"""The Sigma engine: routes each event to the rules for its log source, prefilters them by
the literals they require, and runs the compiled matchers of the survivors.

Two ideas keep it fast with thousands of rules loaded:

* routing - rules are grouped per log source once; an event meets only its group's rules;
* literal prefilter - most rules require some literal substring in some field (an EventID,
  an image name). Per field, all such literals of a group sit in one RE2 set that scans the
  field once; only rules whose literal was found (plus the few with no usable literal) are
  evaluated. A rule is skipped only when it provably cannot match.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import re2

from detectors.event_view import EventView
from detectors.logsource import event_logsource, routing_key
from detectors.rules import CompiledRule

_SET_OPTIONS = re2.Options()
_SET_OPTIONS.max_mem = 256 << 20
_SET_OPTIONS.log_errors = False
#: Below this many rules needing substrings, one RE2 set scan per field costs more than
#: running their matchers.
SUBSTRING_PREFILTER_MIN_RULES = 8
#: Routing keys remembered before the cache starts over.
ROUTING_CACHE_KEYS = 10_000


class _FieldIndex:
    """All required literals of one field, scanned in one pass."""

    __slots__ = ("atom_rules", "field", "matcher")

    def __init__(self, field: str, literals: dict[str, list[int]]) -> None:
        self.field = field
        self.matcher = re2.Set.SearchSet(_SET_OPTIONS)
        self.atom_rules: list[tuple[int, ...]] = []
        for literal, rule_positions in literals.items():
            self.matcher.Add(re2.escape(literal))
            self.atom_rules.append(tuple(rule_positions))
        self.matcher.Compile()


def _all_exact(atoms: frozenset[tuple[str, str, bool]]) -> bool:
    return all(is_exact for *_, is_exact in atoms)


class _RuleGroup:
    """The rules of one log source, with their prefilter.

    Exact atoms (field equals literal) are looked up in a dictionary, which pays off even for
    a handful of rules; substring atoms need the RE2 sets, which pay off only for large groups.
    """

    def __init__(self, rules: list[CompiledRule]) -> None:
        self.rules = rules
        use_sets = (
            sum(1 for rule in rules if rule.necessary and not _all_exact(rule.necessary))
            >= SUBSTRING_PREFILTER_MIN_RULES
        )
        unfiltered: list[int] = []
        exact: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        contained: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        for position, rule in enumerate(rules):
            atoms = rule.necessary
            if atoms is None or (not use_sets and not _all_exact(atoms)):
                unfiltered.append(position)
                continue
            for field, literal, is_exact in atoms:
                (exact if is_exact else contained)[field][literal].append(position)
        self.unfiltered = tuple(unfiltered)
        self.exact = {
            field: {literal: tuple(positions) for literal, positions in literals.items()}
            for field, literals in exact.items()
        }
        self.indexes = {
            field: _FieldIndex(field, literals) for field, literals in contained.items()
        }
        self.fields = tuple(sorted(set(self.exact) | set(self.indexes)))

    def candidates(self, view: EventView) -> Iterable[int]:
        if len(self.unfiltered) == len(self.rules):
            return self.unfiltered
        found: set[int] = set(self.unfiltered)
        exact, indexes = self.exact, self.indexes
        # Walk whichever is shorter: the group's indexed fields (a handful for small groups,
        # hundreds for Windows) or the event's own fields (a few dozen).
        fields = self.fields if len(self.fields) < len(view.event) else view.event
        for field in fields:
            by_value = exact.get(field)
            index = indexes.get(field)
            if by_value is None and index is None:
                continue
            value = view.lower(field)
            if value is None:
                continue
            texts = (value,) if value.__class__ is str else value
            for text in texts:
                if by_value is not None and (hit := by_value.get(text)) is not None:  # type: ignore[arg-type]
                    found.update(hit)
                if index is not None:
                    # RE2's Set.Match returns None (not an empty list) when nothing matched.
                    for atom in index.matcher.Match(text) or ():
                        found.update(index.atom_rules[atom])
        return sorted(found)


class SigmaEngine:
    """Matches events against a compiled rule set."""

    def __init__(self, rules: Iterable[CompiledRule]) -> None:
        self.rules = list(rules)
        self._groups_by_key: dict[tuple[Any, ...], _RuleGroup] = {}
        self._groups_by_rules: dict[tuple[int, ...], _RuleGroup] = {}

    def _group(self, key: tuple[Any, ...]) -> _RuleGroup:
        group = self._groups_by_key.get(key)
        if group is None:
            if len(self._groups_by_key) >= ROUTING_CACHE_KEYS:
                # Keys include program names from log content: a source inventing a new one
                # per line must not grow memory. The rule groups themselves stay cached.
                self._groups_by_key.clear()
            source = event_logsource(key)
            members = tuple(i for i, rule in enumerate(self.rules) if source.admits(rule.logsource))
            # Many keys (event codes of one channel) share a rule set: build each group once.
            group = self._groups_by_rules.get(members)
            if group is None:
                group = _RuleGroup([self.rules[i] for i in members])
                self._groups_by_rules[members] = group
            self._groups_by_key[key] = group
        return group

    def match(self, event: dict[str, Any]) -> list[CompiledRule]:
        """The rules that match ``event``, in rule-set order."""
        group = self._group(routing_key(event))
        if not group.rules:
            return []
        view = EventView(event)
        rules = group.rules
        return [rules[i] for i in group.candidates(view) if rules[i].matcher(view)]

    def rules_for(self, event: dict[str, Any]) -> list[CompiledRule]:
        """The rules an event is routed to (before prefiltering), for explaining a miss."""
        return list(self._group(routing_key(event)).rules)
