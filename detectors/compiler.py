"""Describe a pySigma rule's condition tree as plain data (``detectors/conditions.py``).

pySigma parses the condition once and resolves identifiers and ``1 of``/``all of`` selectors
into a tree of AND/OR/NOT nodes whose leaves are field/value pairs; this walks that tree with
one method per node type (as pySigma's own backends do) and writes each node down as a
description node, from which ``conditions.build_condition`` makes nested closures, so no
tree is interpreted per event. Everything that needs pySigma's types is decided here; the
description is what the rule cache stores.
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
from sigma.types import (
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
)

from socpipe.detectors.conditions import Node
from socpipe.detectors.errors import UnsupportedRuleError
from socpipe.detectors.values import KEYWORD_FIELD, WILDCARD_MULTI, WILDCARD_SINGLE, Pattern

_WILDCARDS = {
    SpecialChars.WILDCARD_MULTI: WILDCARD_MULTI,
    SpecialChars.WILDCARD_SINGLE: WILDCARD_SINGLE,
}


class ConditionCompiler:
    """Turns one rule's conditions into a description node."""

    def __init__(self, source: str) -> None:
        self.source = source

    def describe_rule(self, rule: SigmaRule) -> Node:
        """The description of the rule's whole condition."""
        # Several conditions in one rule are alternatives (Sigma spec: OR-linked).
        described = [self.visit(condition.parsed) for condition in rule.detection.parsed_condition]
        return described[0] if len(described) == 1 else ["or", described]

    def visit(self, node: object) -> Node:
        if node is None:
            # Every detection item was dropped by a pipeline: the rule can never match.
            return ["never"]
        method = getattr(self, f"visit_{type(node).__name__}", None)
        if method is None:
            raise UnsupportedRuleError(self.source, f"condition node {type(node).__name__}")
        return method(node)  # type: ignore[no-any-return]

    def visit_ConditionAND(self, node: ConditionAND) -> Node:
        return ["and", [self.visit(arg) for arg in node.args]]

    def visit_ConditionOR(self, node: ConditionOR) -> Node:
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
                children.append(self.describe_value(field, values[0]))
            else:
                patterns = [self._pattern(value, field is None) for value in values]
                children.append(["strings", field or KEYWORD_FIELD, patterns])
        for field, addresses in networks.items():
            children.append(["cidr", field, [str(value.network) for value in addresses]])
        return children[0] if len(children) == 1 else ["or", children]

    def visit_ConditionNOT(self, node: ConditionNOT) -> Node:
        return ["not", self.visit(node.args[0])]

    def visit_ConditionFieldEqualsValueExpression(
        self, node: ConditionFieldEqualsValueExpression
    ) -> Node:
        return self.describe_value(node.field, node.value)

    def visit_ConditionValueExpression(self, node: ConditionValueExpression) -> Node:
        return self.describe_value(None, node.value)

    def describe_value(self, field: str | None, value: SigmaType) -> Node:
        """``field`` having ``value``; ``field`` None means a keyword detection."""
        target = field or KEYWORD_FIELD
        if isinstance(value, SigmaString):
            cased = isinstance(value, SigmaCasedString)
            return ["string", target, self._pattern(value, field is None), cased]
        if isinstance(value, SigmaTimestampPart):
            return ["timestamp", target, value.timestamp_part.name.lower(), int(value.number)]
        if isinstance(value, SigmaNumber):
            return ["literal", target, str(value.number)]
        if isinstance(value, SigmaBool):
            return ["literal", target, str(value.boolean).lower()]
        if isinstance(value, SigmaNull):
            return ["null", target]
        if isinstance(value, SigmaExists):
            return ["exists", target, bool(value)]
        if isinstance(value, SigmaRegularExpression):
            flags = "".join(value.sigma_to_re_flag[flag] for flag in value.flags)
            return ["regex", target, str(value.regexp), flags]
        if isinstance(value, SigmaCIDRExpression):
            return ["cidr", target, [str(value.network)]]
        if isinstance(value, SigmaCompareExpression):
            return ["compare", target, value.op.name.lower(), value.number.number]
        if isinstance(value, SigmaFieldReference):
            mode = "startswith" if value.starts_with else "endswith" if value.ends_with else ""
            return ["fieldref", target, value.field, mode or "equals"]
        if isinstance(value, SigmaExpansion):
            items = [self.describe_value(field, item) for item in value.values]
            return items[0] if len(items) == 1 else ["or", items]
        raise UnsupportedRuleError(
            self.source, f"value type {type(value).__name__} is not supported"
        )

    def _pattern(self, value: SigmaString, keyword: bool) -> Pattern:
        """The pattern of a string value; keywords match anywhere in the raw record."""
        parts: Pattern = []
        for part in value.s:
            if isinstance(part, Placeholder):
                raise UnsupportedRuleError(
                    self.source, f"placeholder %{part.name}% has no value configured"
                )
            parts.append(_WILDCARDS[part] if isinstance(part, SpecialChars) else part)
        if keyword:
            if parts[:1] != [WILDCARD_MULTI]:
                parts.insert(0, WILDCARD_MULTI)
            if parts[-1:] != [WILDCARD_MULTI]:
                parts.append(WILDCARD_MULTI)
        return parts
