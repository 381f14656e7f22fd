"""Sigma correlation rules: parsed by pySigma, references resolved across files, conditions
read as ranges.

pySigma's correlation parser accepts one comparison per condition, while the Sigma
specification allows ranges (``gte: 10`` together with ``lte: 100``): pySigma parses and
validates everything else, socpipe reads the condition, and every problem is reported with
the file it came from. Field names in ``group-by``, ``aliases`` and ``condition.field`` are event
(ECS) field names such as ``source.ip``: pySigma's field mappings are conditioned on a log
source, which correlation rules do not have.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from socpipe.detectors.errors import RuleError, UnsupportedRuleError, sigma_reason

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
    ruleset: str = ""

    def group_field(self, name: str, rule_id: str) -> str:
        """The event field holding group-by ``name`` in events of rule ``rule_id``."""
        alias = self.aliases.get(name)
        return alias.get(rule_id, name) if alias is not None else name


@dataclass(frozen=True)
class CorrelationDraft:
    """A correlation rule parsed by pySigma whose references still name rules by id or name."""

    #: pySigma's ``SigmaCorrelationRule`` (typed loosely: this compiled module imports pySigma
    #: only when a file is parsed, never when rules come from the rule cache).
    rule: Any
    #: The raw ``correlation:`` section, for the parts pySigma does not keep (ranges).
    section: dict[str, Any]
    source: str
    ruleset: str = ""

    @property
    def id(self) -> str:
        return str(self.rule.id)

    @property
    def name(self) -> str:
        return self.rule.name or ""

    @property
    def references(self) -> tuple[str, ...]:
        return tuple(reference.reference for reference in self.rule.rules or ())


def parse_correlation(
    document: dict[str, Any], source: str, policy: Any, ruleset: str = ""
) -> CorrelationDraft:
    """Parse with pySigma; references are resolved later, across files.

    pySigma takes one comparison per condition, so a range (``gte`` and ``lte``) is handed to
    it with its first comparison only; the whole range is read in ``resolve_correlation``.
    ``policy`` is the ``SigmaPolicy`` to validate with.
    """
    from sigma.correlations import SigmaCorrelationRule, SigmaExtendedCorrelationCondition
    from sigma.exceptions import SigmaError, SigmaRuleLocation

    section = document.get("correlation")
    if not isinstance(section, dict):
        raise RuleError(source, "'correlation' must be a mapping")
    kind = section.get("type")
    if kind in UNSUPPORTED_TYPES:
        raise UnsupportedRuleError(source, f"correlation type {kind} is not supported")
    condition = section.get("condition")
    checked = document
    if isinstance(condition, dict):
        extra = [operator for operator in OPERATORS if operator in condition][1:]
        if extra:
            single = {key: value for key, value in condition.items() if key not in extra}
            checked = {**document, "correlation": {**section, "condition": single}}
    try:
        rule = SigmaCorrelationRule.from_dict(
            checked, collect_errors=True, source=SigmaRuleLocation(Path(source)), policy=policy
        )
    except SigmaError as error:
        raise RuleError(source, sigma_reason(error)) from None
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise RuleError(source, f"{type(error).__name__}: {error}") from None
    if rule.errors:
        raise RuleError(source, "; ".join(sigma_reason(error) for error in rule.errors))
    if isinstance(rule.condition, SigmaExtendedCorrelationCondition):
        raise UnsupportedRuleError(source, "extended (boolean) temporal conditions")
    if rule.id is None:
        raise RuleError(source, "correlation rule has no id")
    return CorrelationDraft(rule, section, source, ruleset)


def resolve_correlation(draft: CorrelationDraft, lookup: Mapping[str, str]) -> CorrelationRule:
    """Build the runnable rule; ``lookup`` maps every known rule id and name to its id."""
    source, rule, section = draft.source, draft.rule, draft.section

    def resolve(reference: str) -> str:
        if reference not in lookup:
            raise RuleError(source, f"correlation references unknown rule {reference!r}")
        return lookup[reference]

    rule_ids = tuple(resolve(reference) for reference in draft.references)
    aliases = {
        alias.alias: {
            resolve(reference.reference): name for reference, name in alias.mapping.items()
        }
        for alias in rule.aliases
    }
    kind = rule.type.name.lower()
    if kind == "temporal_ordered" and section.get("condition") is not None:
        raise RuleError(
            source, "temporal_ordered takes no condition: all rules must match in order"
        )
    condition, value_field = _condition(section.get("condition"), kind, len(rule_ids), source)
    return CorrelationRule(
        id=draft.id,
        name=draft.name,
        title=rule.title,
        level=rule.level.name.lower() if rule.level else "medium",
        tags=tuple(f"{tag.namespace}.{tag.name}" for tag in rule.tags),
        source=source,
        ruleset=draft.ruleset or source,
        type=kind,
        rule_ids=rule_ids,
        timespan=float(rule.timespan.seconds),
        group_by=tuple(rule.group_by or ()),
        aliases=aliases,
        condition=condition,
        value_field=value_field,
        generate=rule.generate,
        description=rule.description or "",
        author=rule.author or "",
        references=tuple(rule.references or ()),
        falsepositives=tuple(rule.falsepositives or ()),
    )


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
