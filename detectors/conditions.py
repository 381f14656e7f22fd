"""A rule's condition as plain data, and the matcher built from it.

The condition compiler (``detectors/compiler.py``) walks pySigma's parsed condition and writes
it down as a *description*: nested lists of strings, numbers and booleans, with every
decision that needs pySigma already taken (modifiers applied, field mappings applied, values
of one field fused, keyword patterns wrapped). This module builds the matcher and the
prefilter clauses from a description. Every rule is built this way, freshly loaded or read
from the rule cache (``detectors/rule_cache.py``), so both give the same matcher; the cache
stores descriptions, never code, and building them needs neither pySigma nor YAML.

Nodes (the first element names the kind)::

    ["and", [node, ...]]            ["or", [node, ...]]            ["not", node]
    ["never"]                       a condition every item of which a pipeline dropped
    ["string", field, pattern, cased]
    ["strings", field, [pattern, ...]]     one field, any of these (case-insensitive)
    ["literal", field, text]        a number or boolean, as Sigma compares it (text)
    ["null", field]                 ["exists", field, expected]
    ["regex", field, pattern, flags]
    ["cidr", field, [network, ...]]
    ["compare", field, operator, number]
    ["fieldref", field, other_field, mode]
    ["timestamp", field, part, number]

A pattern is a list of literal strings and wildcards (``values.WILDCARD_MULTI``,
``values.WILDCARD_SINGLE``). A description that does not follow this shape raises
``DescriptionError`` (a cache entry that was not written by this code is rebuilt).
"""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import ip_network
from typing import Any

from socpipe.detectors.event_view import EventView
from socpipe.detectors.values import (
    COMPARE_OPERATORS,
    REFERENCE_MODES,
    TIMESTAMP_PARTS,
    WILDCARD_MULTI,
    WILDCARD_SINGLE,
    Atom,
    AtomKind,
    Matcher,
    Necessary,
    Pattern,
    all_of,
    any_of,
    compile_cidr_alternatives,
    compile_compare,
    compile_exists,
    compile_field_reference,
    compile_literal,
    compile_null,
    compile_regex_value,
    compile_string,
    compile_string_alternatives,
    compile_timestamp_part,
    union,
)

#: Conjuncts of a condition: each is a set of atoms of which at least one must hold, and all
#: of them must hold for the condition to match. Empty when nothing is known.
Clauses = tuple[frozenset[Atom], ...]
#: A description node (see the module docstring).
Node = list[Any]


class DescriptionError(ValueError):
    """A condition description that this code did not write (damaged or foreign data)."""


def build_condition(node: Any, source: str) -> tuple[Matcher, Clauses]:
    """The matcher of a rule's whole condition, and its necessary clauses, rarest first.

    ``node`` comes from the condition compiler or has passed ``check_condition``: building
    does not check it again (it runs for every rule group a scan meets, checking does not pay
    twice)."""
    matcher, clauses = _build(node, source)
    return matcher, _rarest(clauses)


def check_condition(node: Any) -> None:
    """Raise ``DescriptionError`` unless ``node`` is a description ``build_condition`` can
    build: the rule cache checks every rule when it reads an entry, and builds its matcher
    only when an event first meets the rule."""
    arguments = _checked(node)
    if node[0] in ("and", "or"):
        for child in arguments[0]:
            check_condition(child)
    elif node[0] == "not":
        check_condition(arguments[0])


def _never(_view: EventView) -> bool:
    return False


def _clauses(necessary: Necessary) -> Clauses:
    return (necessary,) if necessary else ()


#: The type of each argument of a node, by kind (a tuple: any of those types).
_SHAPES: dict[str, tuple[type | tuple[type, ...], ...]] = {
    "and": (list,),
    "or": (list,),
    "not": (list,),
    "never": (),
    "string": (str, list, bool),
    "strings": (str, list),
    "literal": (str, str),
    "null": (str,),
    "exists": (str, bool),
    "regex": (str, str, str),
    "cidr": (str, list),
    "compare": (str, str, (int, float)),
    "fieldref": (str, str, str),
    "timestamp": (str, str, int),
}


def _checked(node: Any) -> list[Any]:
    """The node's arguments once the node has a known kind, the right number of arguments of
    the right types, and values its builder accepts (children are not checked)."""
    if type(node) is not list or not node or type(node[0]) is not str:
        raise DescriptionError(f"not a condition node: {node!r:.80}")
    shape = _SHAPES.get(node[0])
    if shape is None:
        raise DescriptionError(f"unknown condition node {node[0]!r:.40}")
    arguments = node[1:]
    if len(arguments) != len(shape) or not all(
        # bool is an int to isinstance(); a number where a flag belongs (or the reverse) is
        # not a description this code wrote.
        type(argument) is bool
        if kind is bool
        else (isinstance(argument, kind) and type(argument) is not bool)
        for argument, kind in zip(arguments, shape, strict=True)
    ):
        raise DescriptionError(f"malformed {node[0]} node: {node!r:.120}")
    kind = node[0]
    if kind in ("and", "or", "strings", "cidr") and not arguments[-1]:
        raise DescriptionError(f"empty {kind} node")
    if kind == "string":
        _pattern(arguments[1])
    elif kind == "strings":
        for pattern in arguments[1]:
            _pattern(pattern)
    elif kind == "regex" and set(arguments[2]) - set("ims"):
        raise DescriptionError(f"unknown regex flags {arguments[2]!r:.20}")
    elif kind == "cidr":
        for network in arguments[1]:
            try:
                ip_network(network)
            except (TypeError, ValueError):
                raise DescriptionError(f"not a network: {network!r:.60}") from None
    elif kind == "compare" and arguments[1] not in COMPARE_OPERATORS:
        raise DescriptionError(f"unknown comparison {arguments[1]!r:.20}")
    elif kind == "fieldref" and arguments[2] not in REFERENCE_MODES:
        raise DescriptionError(f"unknown field reference mode {arguments[2]!r:.20}")
    elif kind == "timestamp" and arguments[1] not in TIMESTAMP_PARTS:
        raise DescriptionError(f"unknown timestamp part {arguments[1]!r:.20}")
    return arguments


def _pattern(value: Any) -> Pattern:
    if type(value) is not list or not all(
        type(part) is str or (type(part) is int and part in (WILDCARD_MULTI, WILDCARD_SINGLE))
        for part in value
    ):
        raise DescriptionError(f"not a string pattern: {value!r:.80}")
    return value


def _build(node: Node, source: str) -> tuple[Matcher, Clauses]:
    kind, arguments = node[0], node[1:]
    if kind == "and":
        children = [_build(child, source) for child in arguments[0]]
        # Every child's clauses must hold.
        return all_of([m for m, _ in children]), tuple(
            clause for _, clauses in children for clause in clauses
        )
    if kind == "or":
        children = [_build(child, source) for child in arguments[0]]
        return any_of([m for m, _ in children]), _either([c for _, c in children])
    if kind == "not":
        inner, _clauses_of_inner = _build(arguments[0], source)
        # Nothing is known to be necessary for a negation to hold.
        return (lambda view: not inner(view)), ()
    if kind == "never":
        return _never, ()
    if kind == "string":
        field, pattern, cased = arguments
        return _with_clauses(compile_string(field, pattern, cased))
    if kind == "strings":
        return _with_clauses(compile_string_alternatives(*arguments))
    if kind == "literal":
        return _with_clauses(compile_literal(*arguments))
    if kind == "regex":
        field, pattern, flags = arguments
        return _with_clauses(compile_regex_value(field, pattern, flags, source))
    return _TESTS[kind](*arguments), ()


def _with_clauses(compiled: tuple[Matcher, Necessary]) -> tuple[Matcher, Clauses]:
    matcher, necessary = compiled
    return matcher, _clauses(necessary)


def _compare(field: str, operator: str, number: float) -> Matcher:
    return compile_compare(field, operator, float(number))


#: Leaves that give the prefilter nothing to index.
_TESTS: dict[str, Callable[..., Matcher]] = {
    "null": compile_null,
    "exists": compile_exists,
    "cidr": compile_cidr_alternatives,
    "compare": _compare,
    "fieldref": compile_field_reference,
    "timestamp": compile_timestamp_part,
}


def _either(alternatives: list[Clauses]) -> Clauses:
    """The clause of an OR: one branch must hold, so the union of one necessary clause per
    branch (the rarest) is necessary; nothing is known if a branch has no clause. A single
    alternative keeps all its clauses."""
    if len(alternatives) == 1:
        return alternatives[0]
    if not alternatives or any(not clauses for clauses in alternatives):
        return ()
    return _clauses(union([_rarest(clauses)[0] for clauses in alternatives]))


def _rarest(clauses: Clauses) -> Clauses:
    """Clauses ordered from the one most likely to be rare.

    Longer literals are rarer, except numbers (an event id or status code is shared by a
    large part of the events of its source) and values of fields that only take a handful of
    values (``event.outcome: success`` is on most logins, however long the word; the user
    ``root`` beside it is the rare part). A regex says little about its rarity and ranks just
    above those. Among equally rare sets, exact atoms win (a dictionary lookup tests them, even
    in small rule groups), then fewer alternatives.
    """
    if len(clauses) < 2:
        return clauses
    return tuple(
        sorted(
            set(clauses),
            key=lambda atoms: (
                min(_rarity(field, text, kind) for field, text, kind in atoms),
                all(kind is AtomKind.EQUALS for _, _, kind in atoms),
                -len(atoms),
                sorted(map(repr, atoms)),
            ),
            reverse=True,
        )
    )


#: Fields whose values come from a short list (ECS categorisation, levels, protocols, the
#: Windows channel and provider): their literals say little about an event, whatever length.
_FEW_VALUED_PREFIXES = ("event.", "log.level", "log.syslog.", "network.", "http.request.method")
_FEW_VALUED_FIELDS = frozenset(
    {"winlog.channel", "winlog.provider_name", "Channel", "Provider_Name"}
)


def _rarity(field: str, text: str, kind: AtomKind) -> int:
    if kind is AtomKind.PATTERN:
        return 2
    if text.isdigit() or field in _FEW_VALUED_FIELDS or field.startswith(_FEW_VALUED_PREFIXES):
        return 1
    return len(text)
