"""Matchers for one field test of a rule's condition, built from plain data.

The condition compiler (``detectors/compiler.py``) turns pySigma's values (after their
modifiers) into a description made of strings, numbers and lists (``detectors/conditions.py``);
the functions here build the closures from that description. They never see a pySigma
object, so a rule set loaded from the rule cache is built without importing pySigma.

Every compiled value also states a *necessary literal* when it has one: a lower-cased
substring that the field must contain for the value to match. The engine indexes those so
that most rules are never evaluated against an event that cannot match them.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from datetime import datetime
from enum import Enum
from functools import lru_cache
from ipaddress import ip_address, ip_network
from typing import Final

from socpipe.detectors.event_view import EventView
from socpipe.detectors.regex import compile_regex

Matcher = Callable[[EventView], bool]
Predicate = Callable[[str], bool]


class AtomKind(Enum):
    """How an atom's text must occur in its field for the atom to hold."""

    #: The lower-cased field equals the text.
    EQUALS = "equals"
    #: The lower-cased field contains the text.
    CONTAINS = "contains"
    #: The field as written matches the text, an RE2 pattern (a rule regex with its flags).
    PATTERN = "pattern"


#: Atoms of which at least one must hold for a match, or None if nothing is known. An atom is
#: (field, text, kind), see AtomKind.
Atom = tuple[str, str, AtomKind]
Necessary = frozenset[Atom] | None

#: Field-less (keyword) detections search the raw record, which holds every value of the event.
KEYWORD_FIELD = "event.original"

#: A wildcard in a string pattern; a pattern is a list of literal strings and wildcards.
WILDCARD_MULTI: Final = 1
WILDCARD_SINGLE: Final = 2
Pattern = list[str | int]

_COMPARATORS: Final = {
    "lt": operator.lt,
    "lte": operator.le,
    "gt": operator.gt,
    "gte": operator.ge,
    "neq": operator.ne,
}
COMPARE_OPERATORS: Final = frozenset(_COMPARATORS)


def field_matcher(field: str, predicate: Predicate, lowered: bool) -> Matcher:
    """Apply ``predicate`` to a field's (lower-cased) text; lists match if any element does."""
    read = EventView.lower if lowered else EventView.text

    def match(view: EventView) -> bool:
        value = read(view, field)
        if value is None:
            return False
        if type(value) is str:
            return predicate(value)  # type: ignore[arg-type]
        return any(predicate(item) for item in value)  # type: ignore[union-attr]

    return match


def _shape(parts: Pattern) -> tuple[str | int, ...]:
    """The pattern with each literal replaced by ``"L"``: what kind of test it needs."""
    return tuple("L" if type(part) is str else part for part in parts)


def string_predicate(parts: Pattern, case_sensitive: bool) -> tuple[Predicate, str]:
    """A predicate for a wildcard pattern, and its longest literal part.

    The common shapes (exact, prefix, suffix, substring) use plain string methods; anything
    else becomes an anchored RE2 expression, which cannot backtrack.
    """
    if not case_sensitive:
        parts = [part.lower() if type(part) is str else part for part in parts]  # type: ignore[union-attr]
    literals = [part for part in parts if type(part) is str]
    longest: str = max(literals, key=len, default="")  # type: ignore[arg-type, type-var]
    many = WILDCARD_MULTI
    shape = _shape(parts)
    if shape == ("L",):
        exact: str = parts[0]  # type: ignore[assignment]
        return exact.__eq__, longest
    if shape == ():
        return "".__eq__, longest
    if shape == (many,):
        return _always, longest
    if shape == ("L", many):
        return operator.methodcaller("startswith", parts[0]), longest
    if shape == (many, "L"):
        return operator.methodcaller("endswith", parts[1]), longest
    if shape == (many, "L", many):
        needle: str = parts[1]  # type: ignore[assignment]
        return (lambda value: needle in value), longest
    if WILDCARD_SINGLE not in shape:
        return _glob_predicate(parts), longest
    pattern = "".join(
        re.escape(part) if type(part) is str else (".*" if part == many else ".")  # type: ignore[arg-type]
        for part in parts
    )
    return compile_regex(f"^{pattern}$", "s", "wildcard")[0], longest


def _always(_value: str) -> bool:
    return True


def _glob_predicate(parts: Pattern) -> Predicate:
    """A ``*``-only pattern matched by finding its pieces in order: linear, no regex.

    Leftmost matching of each middle piece is correct for ``*`` (any later match would leave
    less room for the rest), so no backtracking is ever needed.
    """
    head: str = parts[0] if type(parts[0]) is str else ""  # type: ignore[assignment]
    tail: str = parts[-1] if type(parts[-1]) is str and len(parts) > 1 else ""  # type: ignore[assignment]
    middle = parts[1 if head else 0 : len(parts) - 1 if tail else len(parts)]
    pieces: tuple[str, ...] = tuple(part for part in middle if type(part) is str)  # type: ignore[misc]
    minimum = len(head) + len(tail)

    def predicate(value: str) -> bool:
        if len(value) < minimum or not value.startswith(head) or not value.endswith(tail):
            return False
        position, end = len(head), len(value) - len(tail)
        for piece in pieces:
            found = value.find(piece, position, end)
            if found < 0:
                return False
            position = found + len(piece)
        return True

    return predicate


def compile_string(field: str, parts: Pattern, cased: bool) -> tuple[Matcher, Necessary]:
    """The matcher for ``field`` matching one wildcard pattern (lower-cased unless
    ``cased``)."""
    predicate, longest = string_predicate(parts, cased)
    kind = AtomKind.EQUALS if _shape(parts) == ("L",) else AtomKind.CONTAINS
    necessary = frozenset({(field, longest.lower(), kind)}) if longest else None
    return field_matcher(field, predicate, lowered=not cased), necessary


def compile_literal(field: str, text: str) -> tuple[Matcher, Necessary]:
    """The matcher for ``field`` being a number or boolean, written as ``text``."""
    atom = (field, text, AtomKind.EQUALS)
    return field_matcher(field, text.__eq__, lowered=True), frozenset({atom})


def compile_regex_value(
    field: str, pattern: str, flags: str, source: str
) -> tuple[Matcher, Necessary]:
    """The matcher for a rule regex on ``field`` as written (``flags``: letters ``i``, ``m``,
    ``s``). A regex with no literal to index is still a prefilter atom: the engine scans all
    such regexes of a field in one RE2 set."""
    search, flagged = compile_regex(pattern, flags, source)
    necessary = frozenset({(field, flagged, AtomKind.PATTERN)})
    return field_matcher(field, search, lowered=False), necessary


def compile_string_alternatives(field: str, patterns: list[Pattern]) -> tuple[Matcher, Necessary]:
    """One matcher for "field equals any of these patterns" (case-insensitive): the field is
    read once; exact values become a set, prefixes and suffixes one ``startswith``/``endswith``
    call with a tuple, substrings one loop; only other wildcard shapes keep a predicate each."""
    many = WILDCARD_MULTI
    exact: set[str] = set()
    prefixes: list[str] = []
    suffixes: list[str] = []
    needles: list[str] = []
    predicates: list[Predicate] = []
    atoms: set[Atom] = set()
    known = True
    for pattern in patterns:
        parts: Pattern = [part.lower() if type(part) is str else part for part in pattern]  # type: ignore[union-attr]
        shape = _shape(parts)
        first: str = parts[0] if parts and type(parts[0]) is str else ""  # type: ignore[assignment]
        if shape == ("L",):
            exact.add(first)
        elif shape == ("L", many):
            prefixes.append(first)
        elif shape == (many, "L"):
            suffixes.append(parts[1])  # type: ignore[arg-type]
        elif shape == (many, "L", many):
            needles.append(parts[1])  # type: ignore[arg-type]
        else:
            predicates.append(string_predicate(parts, case_sensitive=True)[0])
        literals: list[str] = [part for part in parts if type(part) is str]  # type: ignore[misc]
        if literals and (longest := max(literals, key=len)):
            atoms.add((field, longest, AtomKind.EQUALS if shape == ("L",) else AtomKind.CONTAINS))
        else:
            known = False
    tests: list[Predicate] = []
    if exact:
        tests.append(frozenset(exact).__contains__)
    if prefixes:
        prefix_tuple = tuple(prefixes)
        tests.append(lambda text: text.startswith(prefix_tuple))
    if suffixes:
        suffix_tuple = tuple(suffixes)
        tests.append(lambda text: text.endswith(suffix_tuple))
    if needles:
        needle_tuple = tuple(needles)

        def any_needle(text: str) -> bool:
            # A plain loop: any() over a generator costs a frame per call on this hot path.
            for needle in needle_tuple:  # noqa: SIM110
                if needle in text:
                    return True
            return False

        tests.append(any_needle)
    tests.extend(predicates)
    if len(tests) == 1:
        test = tests[0]
    else:
        test_tuple = tuple(tests)

        def test(text: str) -> bool:
            for candidate in test_tuple:  # noqa: SIM110
                if candidate(text):
                    return True
            return False

    return field_matcher(field, test, lowered=True), frozenset(atoms) if known else None


def any_of(matchers: list[Matcher]) -> Matcher:
    return _combine(matchers, any)


def all_of(matchers: list[Matcher]) -> Matcher:
    return _combine(matchers, all)


def _combine(matchers: list[Matcher], quantifier: Callable[..., bool]) -> Matcher:
    """One matcher for several; one or two children get a closure without a generator."""
    if len(matchers) == 1:
        return matchers[0]
    if len(matchers) == 2:
        first, second = matchers
        if quantifier is any:
            return lambda view: first(view) or second(view)
        return lambda view: first(view) and second(view)
    items = tuple(matchers)
    # Plain loops: any()/all() over a generator cost a frame per call on this hot path.
    if quantifier is any:

        def match_any(view: EventView) -> bool:
            for matcher in items:  # noqa: SIM110
                if matcher(view):
                    return True
            return False

        return match_any

    def match_all(view: EventView) -> bool:
        for matcher in items:  # noqa: SIM110
            if not matcher(view):
                return False
        return True

    return match_all


def union(necessaries: list[Necessary]) -> Necessary:
    """Necessary literals of an OR: known only if every branch has some."""
    if not necessaries or any(necessary is None for necessary in necessaries):
        return None
    return frozenset().union(*necessaries)  # type: ignore[arg-type]


def compile_null(field: str) -> Matcher:
    def match(view: EventView) -> bool:
        value = view.text(field)
        return value is None or value == "" or value == []

    return match


def compile_exists(field: str, expected: bool) -> Matcher:
    return lambda view: (view.text(field) is not None) is expected


@lru_cache(maxsize=1 << 14)
def _address(text: str) -> tuple[int, int] | None:
    """(IP version, address as an integer), or None for text that is not an address.

    Cached: the same few thousand addresses recur across events, and every cidr rule on a
    field (SigmaHQ has several on the logon source address) would parse them again.
    """
    try:
        address = ip_address(text)
    except ValueError:
        return None
    return address.version, int(address)


def compile_cidr_alternatives(field: str, networks: list[str]) -> Matcher:
    """One matcher for "field is in any of these networks" (``10.0.0.0/8``, ``fe80::/10``):
    the address is parsed once and compared with each network's integer range."""
    ranges = []
    for text in networks:
        network = ip_network(text)
        ranges.append(
            (network.version, int(network.network_address), int(network.broadcast_address))
        )
    range_tuple = tuple(ranges)

    def in_any_network(text: str) -> bool:
        address = _address(text)
        if address is None:
            return False
        version, number = address
        for network_version, low, high in range_tuple:
            if version == network_version and low <= number <= high:
                return True
        return False

    return field_matcher(field, in_any_network, lowered=False)


def compile_compare(field: str, operator_name: str, bound: float) -> Matcher:
    """The matcher for ``field`` compared with a number (``lt``, ``lte``, ``gt``, ``gte``,
    ``neq``); text that is not a number does not match."""
    compare = _COMPARATORS[operator_name]

    def predicate(text: str) -> bool:
        try:
            return compare(float(text), bound)  # type: ignore[no-any-return]
        except ValueError:
            return False

    return field_matcher(field, predicate, lowered=False)


#: How a field reference compares the two fields.
REFERENCE_MODES: Final = ("equals", "startswith", "endswith")


def compile_field_reference(field: str, other: str, mode: str) -> Matcher:
    """The matcher for ``field`` equal to (or starting or ending with) the field ``other``."""
    if mode not in REFERENCE_MODES:
        raise ValueError(f"unknown field reference mode {mode!r}")

    def match(view: EventView) -> bool:
        left, right = view.lower(field), view.lower(other)
        if not isinstance(left, str) or not isinstance(right, str):
            return False
        if mode == "startswith":
            return left.startswith(right)
        if mode == "endswith":
            return left.endswith(right)
        return left == right

    return match


_TIMESTAMP_PARTS: Final = {
    "minute": lambda moment: moment.minute,
    "hour": lambda moment: moment.hour,
    "day": lambda moment: moment.day,
    "week": lambda moment: moment.isocalendar().week,
    "month": lambda moment: moment.month,
    "year": lambda moment: moment.year,
}
TIMESTAMP_PARTS: Final = frozenset(_TIMESTAMP_PARTS)


def compile_timestamp_part(field: str, part: str, expected: int) -> Matcher:
    """The matcher for one part (``minute``, ``hour``, ...) of a timestamp field."""
    extract = _TIMESTAMP_PARTS[part]

    def predicate(text: str) -> bool:
        try:
            return extract(datetime.fromisoformat(text.replace("Z", "+00:00"))) == expected  # type: ignore[no-any-return]
        except ValueError:
            return False

    return field_matcher(field, predicate, lowered=False)
