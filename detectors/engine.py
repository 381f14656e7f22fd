"""The Sigma engine: routes each event to the rules for its log source, prefilters them by
the literals they require, and runs the compiled matchers of the survivors.

Two ideas keep it fast with thousands of rules loaded:

* routing - rules are grouped per log source once; an event meets only its group's rules;
* literal prefilter - most rules require some literal substring in some field (an EventID,
  an image name). Per field, all such literals of a group sit in one RE2 set that scans the
  field once; only rules whose literal was found (plus the few with no usable literal) are
  evaluated. A rule whose only requirement is a regex gets the regex itself as its atom:
  the regexes of a field share one more RE2 set, scanned over the field as written.
  A rule is skipped only when it provably cannot match.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any, Final

import re2

from socpipe.detectors.event_view import EventView
from socpipe.detectors.logsource import event_logsource, routing_key
from socpipe.detectors.regex import compile_set
from socpipe.detectors.rules import CompiledRule
from socpipe.detectors.values import KEYWORD_FIELD, Atom, AtomKind

_SET_OPTIONS = re2.Options()
_SET_OPTIONS.max_mem = 256 << 20
_SET_OPTIONS.log_errors = False
#: Below this many rules needing substrings, one RE2 set scan per field costs more than
#: running their matchers.
SUBSTRING_PREFILTER_MIN_RULES = 8
#: Routing keys remembered before the cache starts over.
ROUTING_CACHE_KEYS: Final = 10_000
#: Prefilter results remembered per rule group (field, value) before that cache starts over,
#: and the longest value remembered: long values (command lines) rarely recur and would only
#: hold memory.
CACHED_VALUES: Final = 20_000
CACHED_VALUE_MAX_CHARS: Final = 200
#: A field's first lookups decide whether remembering its values pays: when nearly every one
#: is new (URLs, user agents of a scan, file paths), storing them only costs.
CACHE_TRIAL_LOOKUPS: Final = 1_000
CACHE_TRIAL_MAX_NEW: Final = 900
_UNIQUE_PER_EVENT = frozenset({KEYWORD_FIELD, "message"})


class _FieldIndex:
    """All required patterns of one field, scanned in one pass."""

    __slots__ = ("atom_rules", "search")

    def __init__(self, patterns: dict[str, list[int]]) -> None:
        self.search = compile_set(patterns, _SET_OPTIONS)
        self.atom_rules = [tuple(rule_positions) for rule_positions in patterns.values()]

    def hits(self, texts: Iterable[str], found: set[int]) -> None:
        """Add to ``found`` the rules whose pattern occurs in any of ``texts``."""
        search, atom_rules = self.search, self.atom_rules
        for text in texts:
            for atom in search(text):
                found.update(atom_rules[atom])


class _Needles:
    """Substrings of one field tested one by one, in groups too small for RE2 sets: a few
    substring tests of a log line cost a fraction of one RE2 call, and far less than running
    the rules they would otherwise leave unfiltered (a keyword rule met every sshd line)."""

    __slots__ = ("needles",)

    def __init__(self, needles: dict[str, list[int]]) -> None:
        self.needles = [(needle, tuple(clauses)) for needle, clauses in needles.items()]

    def hits(self, texts: Iterable[str], found: set[int]) -> None:
        """Add to ``found`` the clauses whose substring occurs in any of ``texts``."""
        for text in texts:
            for needle, clauses in self.needles:
                if needle in text:
                    found.update(clauses)


class _FieldTests:
    """Everything in a group's prefilter that tests one field, and what recent values hit."""

    __slots__ = (
        "by_value",
        "cacheable",
        "equals",
        "field",
        "lookups",
        "lowered_index",
        "new_values",
        "pattern_index",
    )

    def __init__(
        self,
        field: str,
        equals: dict[str, tuple[int, ...]] | None,
        lowered_index: _FieldIndex | _Needles | None,
        pattern_index: _FieldIndex | None,
    ) -> None:
        self.field = field
        self.equals = equals
        self.lowered_index = lowered_index
        self.pattern_index = pattern_index
        # The raw record and the message differ on every event: remembering them only costs.
        self.cacheable = field not in _UNIQUE_PER_EVENT
        #: What each recent value hit: event codes, channels, image paths and account names
        #: recur on most events, and a dictionary lookup is much cheaper than lower-casing
        #: the value and scanning it with RE2 again.
        self.by_value: dict[str | int, frozenset[int]] = {}
        self.lookups = 0
        self.new_values = 0

    def hits(self, view: EventView) -> frozenset[int]:
        """The clauses (see ``_RuleGroup``) whose atoms on this field hold for the event."""
        field = self.field
        found: set[int] = set()
        if self.equals is not None or self.lowered_index is not None:
            value = view.lower(field)
            if value is not None:
                texts = (value,) if type(value) is str else value
                if self.equals is not None:
                    for text in texts:
                        if (hit := self.equals.get(text)) is not None:  # type: ignore[arg-type]
                            found.update(hit)
                if self.lowered_index is not None:
                    self.lowered_index.hits(texts, found)  # type: ignore[arg-type]
        if self.pattern_index is not None:
            value = view.text(field)
            if value is not None:
                self.pattern_index.hits((value,) if type(value) is str else value, found)  # type: ignore[arg-type]
        return frozenset(found)


def _all_exact(atoms: frozenset[Atom]) -> bool:
    return all(kind is AtomKind.EQUALS for *_, kind in atoms)


def _no_patterns(atoms: frozenset[Atom]) -> bool:
    return all(kind is not AtomKind.PATTERN for *_, kind in atoms)


class _RuleGroup:
    """The rules of one log source, with their prefilter.

    Exact atoms (field equals literal) are looked up in a dictionary, which pays off even for
    a handful of rules; substring atoms are found with RE2 sets in large groups and tested
    one by one in small ones; regex atoms need the RE2 sets, so small groups do not index them.

    A rule is indexed by its two rarest indexable clauses (``CompiledRule.prefilter``); the
    index answers clause numbers ``2 * position + k`` for clause ``k`` of the rule at
    ``position``, and a rule is a candidate only when all its indexed clauses were hit.
    """

    def __init__(self, rules: list[CompiledRule]) -> None:
        self.rules = rules
        # Rules from the rule cache build their matcher on first use: here, once per group.
        self.matchers = tuple(rule.matcher for rule in rules)
        use_sets = (
            sum(1 for rule in rules if rule.prefilter and not _all_exact(rule.prefilter[0]))
            >= SUBSTRING_PREFILTER_MIN_RULES
        )
        unfiltered: list[int] = []
        two_clauses: set[int] = set()
        exact: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        # Substrings of the lower-cased field; regexes on the field as written.
        contained: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        patterns: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        for position, rule in enumerate(rules):
            indexable = [clause for clause in rule.prefilter if use_sets or _no_patterns(clause)]
            # Two clauses skip nearly every rule that cannot match; one (an event id) often
            # admits a rule for a large share of its source's events.
            indexable = indexable[:2]
            if not indexable:
                unfiltered.append(position)
                continue
            if len(indexable) == 2:
                two_clauses.add(position)
            for number, clause in enumerate(indexable):
                for field, text, kind in clause:
                    if kind is AtomKind.EQUALS:
                        exact[field][text].append(2 * position + number)
                    elif kind is AtomKind.CONTAINS:
                        contained[field][text].append(2 * position + number)
                    else:
                        patterns[field][text].append(2 * position + number)
        self.unfiltered = tuple(unfiltered)
        self.two_clauses = frozenset(two_clauses)
        self.exact = {
            field: {literal: tuple(positions) for literal, positions in literals.items()}
            for field, literals in exact.items()
        }
        lowered_indexes: dict[str, _FieldIndex | _Needles] = {
            field: (
                _FieldIndex({re2.escape(text): clauses for text, clauses in items.items()})
                if use_sets
                else _Needles(items)
            )
            for field, items in contained.items()
        }
        pattern_indexes = {field: _FieldIndex(items) for field, items in patterns.items()}
        self.field_tests = {
            field: _FieldTests(
                field,
                self.exact.get(field),
                lowered_indexes.get(field),
                pattern_indexes.get(field),
            )
            for field in sorted(set(self.exact) | set(lowered_indexes) | set(pattern_indexes))
        }
        self._all_field_tests = tuple(self.field_tests.values())
        #: Values remembered over all fields (``_FieldTests.by_value``).
        self._cached_values = 0

    def candidates(self, view: EventView) -> Iterable[int]:
        if len(self.unfiltered) == len(self.rules):
            return self.unfiltered
        found: set[int] = set()
        event = view.event
        # Walk whichever is shorter: the group's indexed fields (a handful for small groups,
        # hundreds for Windows) or the event's own fields (a few dozen).
        if len(self._all_field_tests) < len(event):
            for tests in self._all_field_tests:
                value = event.get(tests.field)
                if value is not None and (hits := self._hits(tests, view, value)):
                    found.update(hits)
        else:
            field_tests = self.field_tests
            for field, value in event.items():
                indexed = field_tests.get(field)
                if (
                    indexed is not None
                    and value is not None
                    and (hits := self._hits(indexed, view, value))
                ):
                    found.update(hits)
        if not found:
            return self.unfiltered
        candidates = set(self.unfiltered)
        two_clauses = self.two_clauses
        for clause in found:
            if not clause & 1:
                position = clause >> 1
                if position not in two_clauses or clause + 1 in found:
                    candidates.add(position)
        return sorted(candidates)

    def _hits(self, tests: _FieldTests, view: EventView, value: Any) -> frozenset[int]:
        """``tests.hits``, remembered per value where values recur."""
        kind = type(value)
        # Numbers (status codes, ports, event ids from JSON) recur like short strings.
        # Only exact ints: True == 1 would share an entry with 1 but reads "true".
        if not tests.cacheable or not (
            (kind is str and len(value) <= CACHED_VALUE_MAX_CHARS) or kind is int
        ):
            return tests.hits(view)
        hits = tests.by_value.get(value)
        if hits is None:
            hits = tests.hits(view)
            if self._cached_values >= CACHED_VALUES:
                for field_tests in self._all_field_tests:
                    field_tests.by_value.clear()
                self._cached_values = 0
            tests.by_value[value] = hits
            self._cached_values += 1
            tests.new_values += 1
        if tests.lookups < CACHE_TRIAL_LOOKUPS:  # counted during the trial only
            tests.lookups += 1
            if tests.lookups == CACHE_TRIAL_LOOKUPS and tests.new_values > CACHE_TRIAL_MAX_NEW:
                tests.cacheable = False
                self._cached_values -= len(tests.by_value)
                tests.by_value.clear()
        return hits


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

    @property
    def groups_built(self) -> int:
        """Rule groups built so far (each with its prefilter and its rules' matchers)."""
        return len(self._groups_by_rules)

    def match(self, event: dict[str, Any]) -> list[CompiledRule]:
        """The rules that match ``event``, in rule-set order."""
        group = self._group(routing_key(event))
        if not group.rules:
            return []
        view = EventView(event)
        rules, matchers = group.rules, group.matchers
        return [rules[i] for i in group.candidates(view) if matchers[i](view)]

    def rules_for(self, event: dict[str, Any]) -> list[CompiledRule]:
        """The rules an event is routed to (before prefiltering), for explaining a miss."""
        return list(self._group(routing_key(event)).rules)
