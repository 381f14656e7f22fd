"""Sigma correlation rules: parsing the ``correlation:`` section and resolving its references.

pySigma's correlation parser accepts one comparison per condition, while the Sigma
specification allows ranges (``gte: 10`` together with ``lte: 100``); socpipe therefore reads
the section itself, reusing pySigma only for timespans, and reports every problem with the
file it came from. Field names in ``group-by``, ``aliases`` and ``condition.field`` are event
(ECS) field names such as ``source.ip``: pySigma's field mappings are conditioned on a log
source, which correlation rules do not have.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sigma.correlations import SigmaCorrelationTimespan
from sigma.exceptions import SigmaTimespanError

from detectors.errors import RuleError, UnsupportedRuleError

TYPES = ("event_count", "value_count", "temporal", "temporal_ordered")
#: Valid in the Sigma specification, not implemented by socpipe (reported as unsupported).
UNSUPPORTED_TYPES = (
    "value_sum",
    "value_avg",
    "value_percentile",
    "value_median",
    "temporal_extended",
    "temporal_ordered_extended",
)
OPERATORS = ("gt", "gte", "lt", "lte", "eq", "neq")


@dataclass(frozen=True)
class CountCondition:
    """A range a count must fall in: every given comparison must hold (the spec's AND)."""

    low: float = -math.inf
    low_inclusive: bool = True
    high: float = math.inf
    high_inclusive: bool = True
    excluded: tuple[float, ...] = ()

    def holds(self, count: int) -> bool:
        if count < self.low or (count == self.low and not self.low_inclusive):
            return False
        if count > self.high or (count == self.high and not self.high_inclusive):
            return False
        return count not in self.excluded

    @property
    def monotone(self) -> bool:
        """True when only a lower bound is set: once met, more events keep it met.

        Such conditions fire as soon as a window reaches them; any other condition can only
        be judged on the final count, when its window has closed.
        """
        return self.high == math.inf and not self.excluded

    def describe(self) -> str:
        parts = []
        if self.low != -math.inf:
            parts.append(f"{'>=' if self.low_inclusive else '>'} {self.low:g}")
        if self.high != math.inf:
            parts.append(f"{'<=' if self.high_inclusive else '<'} {self.high:g}")
        parts.extend(f"!= {value:g}" for value in self.excluded)
        return " and ".join(parts) or "any"


@dataclass(frozen=True)
class CorrelationRule:
    """A correlation rule with its references resolved to rule ids."""

    id: str
    name: str
    title: str
    level: str
    tags: tuple[str, ...]
    source: str
    type: str
    rule_ids: tuple[str, ...]
    timespan: float
    group_by: tuple[str, ...]
    #: alias -> (rule id -> event field)
    aliases: Mapping[str, Mapping[str, str]]
    condition: CountCondition
    value_field: str | None
    generate: bool
    description: str = ""
    author: str = ""
    references: tuple[str, ...] = ()
    falsepositives: tuple[str, ...] = ()

    def group_field(self, name: str, rule_id: str) -> str:
        """The event field holding group-by ``name`` in events of rule ``rule_id``."""
        alias = self.aliases.get(name)
        return alias.get(rule_id, name) if alias is not None else name


@dataclass(frozen=True)
class CorrelationDraft:
    """A parsed correlation rule whose references still name rules by id or name."""

    document: dict[str, Any]
    source: str
    id: str
    name: str
    references: tuple[str, ...]
    alias_references: dict[str, dict[str, str]] = field(default_factory=dict)


def parse_correlation(document: dict[str, Any], source: str) -> CorrelationDraft:
    """Check a correlation document's shape; references are resolved later, across files."""
    section = document.get("correlation")
    if not isinstance(section, dict):
        raise RuleError(source, "'correlation' must be a mapping")
    rule_id = document.get("id")
    if not isinstance(rule_id, str) or not rule_id:
        raise RuleError(source, "correlation rule has no id")
    if not isinstance(document.get("title"), str):
        raise RuleError(source, "correlation rule has no title")
    kind = section.get("type")
    if kind in UNSUPPORTED_TYPES:
        raise UnsupportedRuleError(source, f"correlation type {kind} is not supported")
    if kind not in TYPES:
        raise RuleError(source, f"correlation type must be one of {', '.join(TYPES)}, not {kind!r}")
    references = section.get("rules")
    if isinstance(references, str):
        references = [references]
    if not isinstance(references, list) or not references:
        raise RuleError(source, "correlation 'rules' must list the referenced rules")
    if not all(isinstance(reference, str) for reference in references):
        raise RuleError(source, "correlation 'rules' entries must be rule ids or names")
    aliases = section.get("aliases") or {}
    if not isinstance(aliases, dict) or not all(
        isinstance(mapping, dict) and all(isinstance(v, str) for v in mapping.values())
        for mapping in aliases.values()
    ):
        raise RuleError(source, "correlation 'aliases' must map alias -> {rule: field}")
    return CorrelationDraft(
        document=document,
        source=source,
        id=rule_id,
        name=str(document.get("name") or ""),
        references=tuple(references),
        alias_references={str(alias): dict(mapping) for alias, mapping in aliases.items()},
    )


def resolve_correlation(draft: CorrelationDraft, lookup: Mapping[str, str]) -> CorrelationRule:
    """Build the runnable rule; ``lookup`` maps every known rule id and name to its id."""
    source, document = draft.source, draft.document
    section = document["correlation"]

    def resolve(reference: str) -> str:
        if reference not in lookup:
            raise RuleError(source, f"correlation references unknown rule {reference!r}")
        return lookup[reference]

    rule_ids = tuple(resolve(reference) for reference in draft.references)
    aliases = {
        alias: {resolve(reference): name for reference, name in mapping.items()}
        for alias, mapping in draft.alias_references.items()
    }
    kind = section["type"]
    group_by = section.get("group-by") or []
    if isinstance(group_by, str):
        group_by = [group_by]
    if not isinstance(group_by, list) or not all(isinstance(name, str) for name in group_by):
        raise RuleError(source, "correlation 'group-by' must be a list of field names")
    if kind == "temporal_ordered" and section.get("condition") is not None:
        raise RuleError(
            source, "temporal_ordered takes no condition: all rules must match in order"
        )
    condition, value_field = _condition(section.get("condition"), kind, len(rule_ids), source)
    generate = section.get("generate", False)
    if not isinstance(generate, bool):
        raise RuleError(source, "correlation 'generate' must be true or false")
    level = str(document.get("level") or "medium").lower()
    return CorrelationRule(
        id=draft.id,
        name=draft.name,
        title=str(document["title"]),
        level=level,
        tags=tuple(str(tag) for tag in document.get("tags") or ()),
        source=source,
        type=kind,
        rule_ids=rule_ids,
        timespan=_timespan(section.get("timespan"), source),
        group_by=tuple(group_by),
        aliases=aliases,
        condition=condition,
        value_field=value_field,
        generate=generate,
        description=str(document.get("description") or ""),
        author=str(document.get("author") or ""),
        references=tuple(str(ref) for ref in document.get("references") or ()),
        falsepositives=tuple(str(fp) for fp in document.get("falsepositives") or ()),
    )


def _timespan(value: Any, source: str) -> float:
    try:
        return float(SigmaCorrelationTimespan(str(value)).seconds)
    except SigmaTimespanError as error:
        raise RuleError(source, f"correlation timespan: {error}") from None


def _condition(
    value: Any, kind: str, rule_count: int, source: str
) -> tuple[CountCondition, str | None]:
    if value is None:
        if kind.startswith("temporal"):
            # Temporal rules without a condition need every referenced rule to have matched.
            return CountCondition(low=rule_count), None
        raise RuleError(source, f"{kind} correlation needs a condition")
    if not isinstance(value, dict):
        raise RuleError(source, "correlation 'condition' must be a mapping like {gte: 5}")
    unknown = set(value) - set(OPERATORS) - {"field"}
    if unknown:
        raise RuleError(source, f"unknown correlation condition keys: {', '.join(sorted(unknown))}")
    value_field = value.get("field")
    if kind == "value_count":
        if not isinstance(value_field, str):
            raise RuleError(source, "value_count correlation needs condition.field")
    elif value_field is not None:
        raise RuleError(source, f"condition.field only applies to value_count, not {kind}")
    bounds: dict[str, Any] = {}
    excluded: list[float] = []
    for operator in OPERATORS:
        if operator not in value:
            continue
        number = value[operator]
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise RuleError(source, f"correlation condition {operator} needs a number")
        if operator in ("gt", "gte"):
            bounds.update(low=max(bounds.get("low", -math.inf), number))
            bounds["low_inclusive"] = operator == "gte"
        elif operator in ("lt", "lte"):
            bounds.update(high=min(bounds.get("high", math.inf), number))
            bounds["high_inclusive"] = operator == "lte"
        elif operator == "eq":
            bounds.update(low=number, high=number, low_inclusive=True, high_inclusive=True)
        else:
            excluded.append(number)
    if not bounds and not excluded:
        raise RuleError(source, "correlation condition has no comparison (gt, gte, lt, ...)")
    return CountCondition(excluded=tuple(excluded), **bounds), value_field
