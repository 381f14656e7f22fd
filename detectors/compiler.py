"""Compile a pySigma rule's condition tree into one closure over an event view.

pySigma parses the condition once and resolves identifiers and ``1 of``/``all of`` selectors
into a tree of AND/OR/NOT nodes whose leaves are field/value pairs; this walks that tree with
one method per node type (as pySigma's own backends do) and returns nested closures, so no
tree is interpreted per event.
"""

from __future__ import annotations

from collections import defaultdict

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.rule import SigmaRule
from sigma.types import SigmaCIDRExpression, SigmaString

from socpipe.detectors.errors import UnsupportedRuleError
from socpipe.detectors.event_view import EventView
from socpipe.detectors.values import (
    Atom,
    AtomKind,
    Matcher,
    Necessary,
    all_of,
    any_of,
    compile_cidr_alternatives,
    compile_string_alternatives,
    compile_value,
    union,
)

#: Conjuncts of a condition: each is a set of atoms of which at least one must hold, and all
#: of them must hold for the condition to match. Empty when nothing is known.
Clauses = tuple[frozenset[Atom], ...]


def _never(_view: EventView) -> bool:
    return False


def _clauses(necessary: Necessary) -> Clauses:
    return (necessary,) if necessary else ()


class ConditionCompiler:
    """Turns one rule's conditions into a matcher and the clauses its prefilter indexes."""

    def __init__(self, source: str) -> None:
        self.source = source

    def compile_rule(self, rule: SigmaRule) -> tuple[Matcher, Clauses]:
        """The rule's matcher, and its rarest necessary clauses (rarest first)."""
        # Several conditions in one rule are alternatives (Sigma spec: OR-linked).
        compiled = [self.visit(condition.parsed) for condition in rule.detection.parsed_condition]
        clauses = _either([c for _, c in compiled])
        return any_of([m for m, _ in compiled]), _rarest(clauses)

    def visit(self, node: object) -> tuple[Matcher, Clauses]:
        if node is None:
            # Every detection item was dropped by a pipeline: the rule can never match.
            return _never, ()
        method = getattr(self, f"visit_{type(node).__name__}", None)
        if method is None:
            raise UnsupportedRuleError(self.source, f"condition node {type(node).__name__}")
        return method(node)

    def visit_ConditionAND(self, node: ConditionAND) -> tuple[Matcher, Clauses]:
        children = [self.visit(arg) for arg in node.args]
        # Every child's clauses must hold.
        return all_of([m for m, _ in children]), tuple(
            clause for _, clauses in children for clause in clauses
        )

    def visit_ConditionOR(self, node: ConditionOR) -> tuple[Matcher, Clauses]:
        # Value lists ("field: [a, b, c]") arrive as an OR of same-field leaves; plain
        # case-insensitive strings on one field are fused into a single matcher.
        # Keyword lists (field None) are fused the same way, on the raw record.
        # Network lists ("field|cidr: [...]") likewise become one matcher per field.
        by_field: dict[str | None, list[SigmaString]] = defaultdict(list)
        networks: dict[str, list[SigmaCIDRExpression]] = defaultdict(list)
        others = []
        for arg in node.args:
            if (
                isinstance(arg, ConditionFieldEqualsValueExpression)
                and type(arg.value) is SigmaString
            ):
                by_field[arg.field].append(arg.value)
            elif (
                isinstance(arg, ConditionFieldEqualsValueExpression)
                and arg.field
                and isinstance(arg.value, SigmaCIDRExpression)
            ):
                networks[arg.field].append(arg.value)
            elif isinstance(arg, ConditionValueExpression) and type(arg.value) is SigmaString:
                by_field[None].append(arg.value)
            else:
                others.append(arg)
        children = [self.visit(arg) for arg in others]
        for field, values in by_field.items():
            if len(values) == 1:
                matcher, necessary = compile_value(field, values[0], self.source)
            else:
                matcher, necessary = compile_string_alternatives(field, values, self.source)
            children.append((matcher, _clauses(necessary)))
        for field, addresses in networks.items():
            children.append((compile_cidr_alternatives(field, addresses), ()))
        return any_of([m for m, _ in children]), _either([c for _, c in children])

    def visit_ConditionNOT(self, node: ConditionNOT) -> tuple[Matcher, Clauses]:
        inner, _clauses_of_inner = self.visit(node.args[0])
        # Nothing is known to be necessary for a negation to hold.
        return (lambda view: not inner(view)), ()

    def visit_ConditionFieldEqualsValueExpression(
        self, node: ConditionFieldEqualsValueExpression
    ) -> tuple[Matcher, Clauses]:
        matcher, necessary = compile_value(node.field, node.value, self.source)
        return matcher, _clauses(necessary)

    def visit_ConditionValueExpression(
        self, node: ConditionValueExpression
    ) -> tuple[Matcher, Clauses]:
        matcher, necessary = compile_value(None, node.value, self.source)
        return matcher, _clauses(necessary)


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
