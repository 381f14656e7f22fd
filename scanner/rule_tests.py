"""Run the test events kept beside each rule (``<rule>.tests.yml``).

Test entries are raw log lines, parsed exactly as ``socpipe scan`` parses them, so a rule test
also proves that the parser produces the fields the rule relies on. Each rule must have at
least one event it matches and one it does not; a rule without tests fails. A case may also be
a list of lines read as one stream (the SYSCALL and EXECVE records of one audited call): it
matches when any of its events raises the rule. A correlation rule's cases are sequences of
lines, each run through a fresh detector. Every case is a stream of its own: nothing a parser
remembers (audit records) carries over from one case to the next, and its events are matched
as a reader hands them on (an audit process start once its CWD record was read), the case's
end releasing what is still held.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

import yaml

from socpipe.collectors.parsers import ParseContext, parse_detected
from socpipe.core.event import Event
from socpipe.core.yamltext import load_document, read_bounded, yaml_problem
from socpipe.detectors.correlation_rules import CorrelationRule
from socpipe.detectors.detection import Detector
from socpipe.detectors.engine import SigmaEngine
from socpipe.detectors.logsource import routing_key
from socpipe.detectors.rules import (
    MAX_RULE_FILE_BYTES,
    MAX_RULE_NODES,
    CompiledRule,
    RuleLoadReport,
    rule_tests_file,
)

#: Year-less test lines ("Mar  3 ...") are read as if written in March 2026.
TEST_CONTEXT = ParseContext(agency_id="rule-test", reference_time=datetime(2026, 3, 10, tzinfo=UTC))


#: A routing key (detectors.logsource.routing_key): which log source an event came from.
Source = tuple[str | None, ...]


@dataclass(frozen=True)
class RuleTestResult:
    rule: CompiledRule | CorrelationRule
    case: str
    passed: bool
    reason: str = ""
    #: True for a ``match`` case, False for ``no_match``, None for a problem with the file.
    expected: bool | None = None
    #: The log sources of the case's events: those that raised the rule when one did, all of
    #: them otherwise (docs/coverage.md places a rule by them).
    sources: frozenset[Source] = frozenset()


@dataclass(frozen=True)
class _CaseRun:
    matched: bool
    parsed_as: str
    sources: frozenset[Source]


def run_rule_tests(report: RuleLoadReport) -> list[RuleTestResult]:
    """Every test case of every rule and correlation rule of a loaded rule set."""
    engine = SigmaEngine(report.rules)
    results: list[RuleTestResult] = []
    for rule in report.rules:
        results.extend(_run_cases(rule, partial(_single_event_matches, engine, rule)))
    for correlation in report.correlations:
        results.extend(_run_cases(correlation, partial(_sequence_matches, report, correlation)))
    return results


def _run_cases(
    rule: CompiledRule | CorrelationRule, matches: Callable[[Any], _CaseRun]
) -> list[RuleTestResult]:
    path = rule_tests_file(rule)
    try:
        text = read_bounded(path, MAX_RULE_FILE_BYTES)
        cases = load_document(text, max_nodes=MAX_RULE_NODES) or {}
    except FileNotFoundError:
        return [RuleTestResult(rule, str(path), False, "no test file beside the rule")]
    except yaml.YAMLError as error:
        reason, line = yaml_problem(error)
        where = f"{path}: line {line}" if line else str(path)
        return [RuleTestResult(rule, where, False, f"cannot read tests: {reason}")]
    except (OSError, UnicodeDecodeError) as error:
        return [RuleTestResult(rule, str(path), False, f"cannot read tests: {error}")]
    results = []
    for expected_key, expected in (("match", True), ("no_match", False)):
        entries = cases.get(expected_key) or []
        if not entries:
            results.append(
                RuleTestResult(rule, f"{path}:{expected_key}", False, f"no '{expected_key}' events")
            )
        for number, case in enumerate(entries, 1):
            name = f"{path}:{expected_key}[{number}]"
            try:
                run = matches(case)
            except ValueError as error:
                results.append(RuleTestResult(rule, name, False, str(error), expected))
                continue
            if run.matched == expected:
                results.append(RuleTestResult(rule, name, True, "", expected, run.sources))
            else:
                verb = "did not match" if expected else "matched"
                reason = f"{verb} (parsed as {run.parsed_as})"
                results.append(RuleTestResult(rule, name, False, reason, expected, run.sources))
    return results


def _read_case(
    stream: ParseContext, lines: Iterable[tuple[str, ParseContext]]
) -> tuple[list[Event], str]:
    """The events of a case's lines, each parsed with its context (derived from ``stream``),
    in the order a reader hands them on; the names of the parsers that read them."""
    join = stream.audit.join
    parsers = set()
    events = []
    for line, context in lines:
        event, parser = parse_detected(line, context)
        parsers.add(parser.name)
        events.extend(join.admit(event))
    events.extend(join.flush())
    return events, ", ".join(sorted(parsers))


def _single_event_matches(engine: SigmaEngine, rule: CompiledRule, case: Any) -> _CaseRun:
    context = TEST_CONTEXT.new_stream()
    lines = case if isinstance(case, list) else [case]
    events, parsed_as = _read_case(context, ((str(line), context) for line in lines))
    sources = {routing_key(event) for event in events}
    raised = {
        routing_key(event)
        for event in events
        if any(hit.id == rule.id for hit in engine.match(event))
    }
    return _CaseRun(bool(raised), parsed_as, frozenset(raised or sources))


def _sequence_matches(report: RuleLoadReport, correlation: CorrelationRule, case: Any) -> _CaseRun:
    """Feed a sequence of lines through a fresh detector (no state shared between cases)."""
    if not isinstance(case, list):
        raise ValueError("a correlation test case is a list of lines")
    detector = Detector(report)
    stream = TEST_CONTEXT.new_stream()
    lines = []
    for item in case:
        line, repeat, agency = _sequence_item(item)
        lines.extend([(line, replace(stream, agency_id=agency))] * repeat)
    events, parsed_as = _read_case(stream, lines)
    alerts = [alert for event in events for alert in detector.process(event)]
    alerts.extend(detector.flush())
    matched = any(alert.rule.id == correlation.id for alert in alerts)
    return _CaseRun(matched, parsed_as, frozenset(routing_key(event) for event in events))


def _sequence_item(item: Any) -> tuple[str, int, str]:
    if isinstance(item, str):
        return item, 1, TEST_CONTEXT.agency_id
    if isinstance(item, dict) and isinstance(item.get("line"), str):
        repeat = item.get("repeat", 1)
        if not isinstance(repeat, int) or repeat < 1:
            raise ValueError(f"repeat must be a positive number, not {repeat!r}")
        return item["line"], repeat, str(item.get("agency", TEST_CONTEXT.agency_id))
    raise ValueError(f"a sequence item is a line or {{line, repeat, agency}}, not {item!r}")
