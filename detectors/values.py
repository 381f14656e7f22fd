"""Compile one Sigma value (after pySigma applied its modifiers) into a predicate on an event.

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
from ipaddress import ip_address
from typing import Final

from sigma.types import (
    CompareOperators,
    Placeholder,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaString,
    SigmaTimestampPart,
    SigmaType,
    SpecialChars,
    TimestampPart,
)

from socpipe.detectors.errors import UnsupportedRuleError
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

_COMPARATORS: Final = {
    CompareOperators.LT: operator.lt,
    CompareOperators.LTE: operator.le,
    CompareOperators.GT: operator.gt,
    CompareOperators.GTE: operator.ge,
    CompareOperators.NEQ: operator.ne,
}


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


def string_predicate(
    parts: list[str | SpecialChars], case_sensitive: bool
) -> tuple[Predicate, str]:
    """A predicate for a wildcard pattern, and its longest literal part.

    The common shapes (exact, prefix, suffix, substring) use plain string methods; anything
    else becomes an anchored RE2 expression, which cannot backtrack.
    """
    if not case_sensitive:
        parts = [part.lower() if isinstance(part, str) else part for part in parts]
    literals = [part for part in parts if isinstance(part, str)]
    longest = max(literals, key=len, default="")
    many = SpecialChars.WILDCARD_MULTI
    shape = tuple(part if isinstance(part, SpecialChars) else "L" for part in parts)
    if shape == ("L",):
        exact = parts[0]
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
        needle = parts[1]
        return (lambda value: needle in value), longest
    if SpecialChars.WILDCARD_SINGLE not in parts:
        return _glob_predicate(parts), longest
    pattern = "".join(
        re.escape(part) if isinstance(part, str) else (".*" if part is many else ".")
        for part in parts
    )
    return compile_regex(f"^{pattern}$", "s", "wildcard")[0], longest


def _always(_value: str) -> bool:
    return True


def _glob_predicate(parts: list[str | SpecialChars]) -> Predicate:
    """A ``*``-only pattern matched by finding its pieces in order: linear, no regex.

    Leftmost matching of each middle piece is correct for ``*`` (any later match would leave
    less room for the rest), so no backtracking is ever needed.
    """
    many = SpecialChars.WILDCARD_MULTI
    head = parts[0] if isinstance(parts[0], str) else ""
    tail = parts[-1] if isinstance(parts[-1], str) and len(parts) > 1 else ""
    middle = [part for part in parts[1 if head else 0 : len(parts) - 1 if tail else len(parts)]]
    pieces = tuple(part for part in middle if part is not many)
    minimum = len(head) + len(tail)

    def predicate(value: str) -> bool:
        if len(value) < minimum or not value.startswith(head) or not value.endswith(tail):
            return False
        position, end = len(head), len(value) - len(tail)
        for piece in pieces:
            found = value.find(piece, position, end)  # type: ignore[arg-type]
            if found < 0:
                return False
            position = found + len(piece)  # type: ignore[arg-type]
        return True

    return predicate


def _string_parts(value: SigmaString, source: str) -> list[str | SpecialChars]:
    parts: list[str | SpecialChars] = []
    for part in value.s:
        if isinstance(part, Placeholder):
            raise UnsupportedRuleError(source, f"placeholder %{part.name}% has no value configured")
        parts.append(part)
    return parts


def _pattern_parts(value: SigmaString, keyword: bool, source: str) -> list[str | SpecialChars]:
    """The pattern of a string value; keywords match anywhere in the raw record."""
    parts = _string_parts(value, source)
    if keyword:
        many: list[str | SpecialChars] = [SpecialChars.WILDCARD_MULTI]
        parts = ([] if parts[:1] == many else many) + parts
        parts = parts + ([] if parts[-1:] == many else many)
    return parts


def compile_value(field: str | None, value: SigmaType, source: str) -> tuple[Matcher, Necessary]:
    """The matcher for ``field`` having ``value``; ``field`` None means a keyword detection."""
    target = field or KEYWORD_FIELD
    if isinstance(value, SigmaString):
        parts = _pattern_parts(value, field is None, source)
        cased = isinstance(value, SigmaCasedString)
        predicate, longest = string_predicate(parts, cased)
        kind = (
            AtomKind.EQUALS if len(parts) == 1 and isinstance(parts[0], str) else AtomKind.CONTAINS
        )
        necessary = frozenset({(target, longest.lower(), kind)}) if longest else None
        return field_matcher(target, predicate, lowered=not cased), necessary
    if isinstance(value, SigmaTimestampPart):
        return _timestamp_part_matcher(target, value), None
    if isinstance(value, SigmaNumber | SigmaBool):
        text = str(value.number) if isinstance(value, SigmaNumber) else str(value.boolean).lower()
        atom = (target, text, AtomKind.EQUALS)
        return field_matcher(target, text.__eq__, lowered=True), frozenset({atom})
    if isinstance(value, SigmaNull):
        return _null_matcher(target), None
    if isinstance(value, SigmaExists):
        return _exists_matcher(target, bool(value)), None
    if isinstance(value, SigmaRegularExpression):
        flags = "".join(value.sigma_to_re_flag[flag] for flag in value.flags)
        # A regex with no literal to index is still a prefilter atom: the engine scans all
        # such regexes of a field in one RE2 set.
        search, pattern = compile_regex(str(value.regexp), flags, source)
        necessary = frozenset({(target, pattern, AtomKind.PATTERN)})
        return field_matcher(target, search, lowered=False), necessary
    if isinstance(value, SigmaCIDRExpression):
        return compile_cidr_alternatives(target, [value]), None
    if isinstance(value, SigmaCompareExpression):
        return field_matcher(target, _compare_predicate(value), lowered=False), None
    if isinstance(value, SigmaFieldReference):
        return _field_reference_matcher(target, value), None
    if isinstance(value, SigmaExpansion):
        compiled = [compile_value(field, item, source) for item in value.values]
        return any_of([matcher for matcher, _ in compiled]), union([n for _, n in compiled])
    raise UnsupportedRuleError(source, f"value type {type(value).__name__} is not supported")


def compile_string_alternatives(
    field: str | None, values: list[SigmaString], source: str
) -> tuple[Matcher, Necessary]:
    """One matcher for "field equals any of these patterns": the field is read once; exact
    values become a set, prefixes and suffixes one ``startswith``/``endswith`` call with a
    tuple, substrings one loop; only other wildcard shapes keep a predicate each."""
    many = SpecialChars.WILDCARD_MULTI
    keyword = field is None
    field = field or KEYWORD_FIELD
    exact: set[str] = set()
    prefixes: list[str] = []
    suffixes: list[str] = []
    needles: list[str] = []
    predicates: list[Predicate] = []
    atoms: set[Atom] = set()
    known = True
    for value in values:
        parts = [
            part.lower() if isinstance(part, str) else part
            for part in _pattern_parts(value, keyword, source)
        ]
        shape = tuple("L" if isinstance(part, str) else part for part in parts)
        if shape == ("L",):
            exact.add(parts[0])  # type: ignore[arg-type]
        elif shape == ("L", many):
            prefixes.append(parts[0])  # type: ignore[arg-type]
        elif shape == (many, "L"):
            suffixes.append(parts[1])  # type: ignore[arg-type]
        elif shape == (many, "L", many):
            needles.append(parts[1])  # type: ignore[arg-type]
        else:
            predicates.append(string_predicate(parts, case_sensitive=True)[0])
        literals = [part for part in parts if isinstance(part, str)]
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


def _null_matcher(field: str) -> Matcher:
    def match(view: EventView) -> bool:
        value = view.text(field)
        return value is None or value == "" or value == []

    return match


def _exists_matcher(field: str, expected: bool) -> Matcher:
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


def compile_cidr_alternatives(field: str, values: list[SigmaCIDRExpression]) -> Matcher:
    """One matcher for "field is in any of these networks": the address is parsed once and
    compared with each network's integer range."""
    ranges = tuple(
        (
            value.network.version,
            int(value.network.network_address),
            int(value.network.broadcast_address),
        )
        for value in values
    )

    def in_any_network(text: str) -> bool:
        address = _address(text)
        if address is None:
            return False
        version, number = address
        for network_version, low, high in ranges:
            if version == network_version and low <= number <= high:
                return True
        return False

    return field_matcher(field, in_any_network, lowered=False)


def _compare_predicate(value: SigmaCompareExpression) -> Predicate:
    compare = _COMPARATORS[value.op]
    bound = value.number.number

    def predicate(text: str) -> bool:
        try:
            return compare(float(text), bound)
        except ValueError:
            return False

    return predicate


def _field_reference_matcher(field: str, value: SigmaFieldReference) -> Matcher:
    other = value.field

    def match(view: EventView) -> bool:
        left, right = view.lower(field), view.lower(other)
        if not isinstance(left, str) or not isinstance(right, str):
            return False
        if value.starts_with:
            return left.startswith(right)
        if value.ends_with:
            return left.endswith(right)
        return left == right

    return match


_TIMESTAMP_PARTS: Final = {
    TimestampPart.MINUTE: lambda moment: moment.minute,
    TimestampPart.HOUR: lambda moment: moment.hour,
    TimestampPart.DAY: lambda moment: moment.day,
    TimestampPart.WEEK: lambda moment: moment.isocalendar().week,
    TimestampPart.MONTH: lambda moment: moment.month,
    TimestampPart.YEAR: lambda moment: moment.year,
}


def _timestamp_part_matcher(field: str, value: SigmaTimestampPart) -> Matcher:
    extract = _TIMESTAMP_PARTS[value.timestamp_part]
    expected = int(value.number)

    def predicate(text: str) -> bool:
        try:
            return extract(datetime.fromisoformat(text.replace("Z", "+00:00"))) == expected
        except ValueError:
            return False

    return field_matcher(field, predicate, lowered=False)
