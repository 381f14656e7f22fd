"""Load Sigma rule files with pySigma, map their fields, and compile them.

Loading a rule set never stops at the first bad rule: every file is tried, every problem is
kept with its file and reason, and the valid rules are used (as pySigma's collection loader
does). Unsupported-but-valid rules are reported apart from broken ones.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from socpipe.core.resources import field_mappings_dir
from socpipe.detectors.conditions import Clauses, Node, build_condition
from socpipe.detectors.correlation_rules import CorrelationRule
from socpipe.detectors.errors import RuleError, UnsupportedRuleError
from socpipe.detectors.logsource import RuleLogSource
from socpipe.detectors.values import Matcher

if TYPE_CHECKING:
    # pySigma and PyYAML are imported when rules are loaded from their files, never when
    # they come from the rule cache: importing them costs more than the cache's whole load.
    from sigma.policy import SigmaPolicy
    from sigma.processing.pipeline import ProcessingPipeline

    from socpipe.detectors.correlation_rules import CorrelationDraft
    from socpipe.detectors.profile import RuleProfile

log = logging.getLogger(__name__)

#: The field mapping (a file of the field-mappings folder, by stem) a rule of a log source
#: cannot match without: Windows rules name EventData fields that live under
#: ``winlog.event_data.``, auditd and web-server rules use names the parsers do not write.
#: A rule set loaded without it is an error per rule, never a rule that silently never fires.
REQUIRED_MAPPINGS: dict[tuple[str, str], str] = {
    ("product", "windows"): "windows",
    ("product", "linux"): "linux",
    ("category", "webserver"): "web",
    ("category", "firewall"): "web",
}

#: A rule file larger than this is refused unread (the largest SigmaHQ rule is about 300 KB).
MAX_RULE_FILE_BYTES = 4 << 20
#: Values a rule document may hold once its YAML aliases are expanded, checked before it is
#: built: an alias chain in ``references`` passed pySigma's own check (which covers only
#: ``detection``) and exhausted memory when the first alert was written. The largest SigmaHQ
#: rule holds about 4,500 values.
MAX_RULE_NODES = 50_000


@cache
def rule_policy() -> SigmaPolicy:
    """Regexes are validated with Python's syntax so that a typo gets Python's precise
    message; whether RE2 can run the pattern is decided when it is compiled
    (detectors/regex.py), where a pattern that needs backtracking is an error. Template
    variables and external sources stay disabled, as in pySigma's safe default."""
    from sigma.policy import SigmaPolicy
    from sigma.policy.regex_engine import PythonRegexEngine

    return SigmaPolicy(regex_engine=PythonRegexEngine())


@dataclass(frozen=True)
class CompiledRule:
    """A rule ready to run: its metadata, its prefilter clauses and its matcher."""

    id: str
    title: str
    level: str
    tags: tuple[str, ...]
    logsource: RuleLogSource
    #: Necessary clauses for the engine's prefilter, rarest first (empty: none known).
    prefilter: Clauses
    source: str
    #: The condition as plain data (``detectors/conditions.py``): what the matcher and the
    #: prefilter are built from, and what the rule cache stores.
    condition: Node = field(compare=False)
    description: str = ""
    author: str = ""
    references: tuple[str, ...] = ()
    falsepositives: tuple[str, ...] = ()
    name: str = ""
    #: The rule's place in its rule set, the same on every installation
    #: (``rules/linux/ssh_invalid_user.yml``); ``source`` is the full path, for messages.
    ruleset: str = ""
    #: Sigma status (stable, test, experimental, ...); empty when the rule states none.
    status: str = ""
    #: The matcher once built: at load for rules parsed from their files, on first use for
    #: rules from the rule cache (a small scan meets a fraction of a large rule set).
    built_matcher: Matcher | None = field(default=None, repr=False, compare=False)

    @property
    def matcher(self) -> Matcher:
        """Whether the rule's condition holds for an event (``EventView``)."""
        matcher = self.built_matcher
        if matcher is None:
            matcher = build_condition(self.condition, self.source)[0]
            # Frozen: the matcher is a cache of ``condition``, not a change of the rule.
            object.__setattr__(self, "built_matcher", matcher)
        return matcher


@dataclass
class RuleLoadReport:
    """What a load produced: usable rules, broken rules and valid-but-unsupported rules."""

    rules: list[CompiledRule] = field(default_factory=list)
    correlations: list[CorrelationRule] = field(default_factory=list)
    errors: list[RuleError] = field(default_factory=list)
    unsupported: list[UnsupportedRuleError] = field(default_factory=list)
    files: int = 0
    #: Read from the rule cache (``detectors/rule_cache.py``) rather than the rule files.
    cached: bool = False
    #: Valid rules a profile (detectors/profile.py) does not run, with the reason.
    switched_off: list[tuple[CompiledRule, str]] = field(default_factory=list)
    #: The profile applied (its name and file), when one was.
    profile_name: str = ""
    profile_source: str = ""


@dataclass(frozen=True)
class FieldMappings:
    """The pySigma processing pipelines that map Sigma field names to socpipe's event fields,
    merged, with the names (file stems) of those that were found."""

    #: None: no mapping (rules written against the event's own field names).
    pipeline: ProcessingPipeline | None
    names: frozenset[str] = frozenset()
    folder: str = "(none)"

    def missing_for(self, logsource: RuleLogSource) -> str | None:
        """The required mapping a rule of this log source lacks, if any."""
        for (attribute, value), name in REQUIRED_MAPPINGS.items():
            if getattr(logsource, attribute) == value and name not in self.names:
                return name
        return None


#: No mapping at all: rules written against the event's own field names (tests, inline rules).
NO_MAPPINGS = FieldMappings(None, frozenset(REQUIRED_MAPPINGS.values()))


def load_field_mappings(folder: Path | None = None) -> FieldMappings:
    """Every field-mapping pipeline of a folder (default: the ones shipped with socpipe),
    merged in priority order. A file that cannot be read or parsed is a ``RuleError``."""
    import yaml
    from sigma.exceptions import SigmaError
    from sigma.processing.pipeline import ProcessingPipeline

    from socpipe.core.yamltext import load_document, read_bounded, yaml_problem

    folder = folder or field_mappings_dir()
    merged = ProcessingPipeline()
    names = set()
    for path in mapping_files(folder):
        try:
            document = load_document(
                read_bounded(path, MAX_RULE_FILE_BYTES),
                max_nodes=MAX_RULE_NODES,
            )
            merged = merged + ProcessingPipeline.from_dict(document)
        except yaml.YAMLError as error:
            reason, line = yaml_problem(error)
            raise RuleError(str(path), f"field mapping unusable: {reason}", line) from None
        except (OSError, SigmaError, ValueError, TypeError) as error:
            raise RuleError(str(path), f"field mapping unusable: {error}") from None
        names.add(path.stem)
    return FieldMappings(merged, frozenset(names), str(folder))


def mapping_files(folder: Path) -> list[Path]:
    """The field-mapping pipelines of a folder, in the order they are merged."""
    return sorted(folder.glob("*.yml"))


def rule_tests_file(rule: CompiledRule | CorrelationRule) -> Path:
    """Where a rule's test events are kept: ``<rule>.tests.yml`` beside it."""
    source = Path(rule.source)
    return source.with_name(source.stem + ".tests.yml")


def test_files(paths: Iterable[Path]) -> list[Path]:
    """The rule tests (``*.tests.yml``) below ``paths``, in a stable order."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(path.rglob("*.tests.y*ml")))
        elif (beside := path.with_name(f"{path.stem}.tests.yml")).exists():
            found.append(beside)
    return found


def rule_files(paths: Iterable[Path]) -> list[tuple[Path, str]]:
    """Every rule file below ``paths``, with its place in its rule set: the path from the
    folder that was given (``rules/linux/x.yml``), or the file name when a file was given."""
    files: list[tuple[Path, str]] = []
    for path in paths:
        if path.is_dir():
            files.extend(
                (file, f"{path.name}/{file.relative_to(path).as_posix()}")
                for file in sorted(path.rglob("*"))
                if file.suffix in (".yml", ".yaml")
            )
        else:
            files.append((path, path.name))
    # Test events kept beside the rules are not rules.
    return [item for item in files if not item[0].name.endswith((".tests.yml", ".tests.yaml"))]


def load_rules(
    paths: Iterable[Path],
    mappings: FieldMappings | None = None,
    profile: RuleProfile | None = None,
) -> RuleLoadReport:
    """Load every rule file below ``paths``; problems with rules are collected, never raised
    (a broken installation, such as missing field mappings, is raised). A ``profile`` then
    switches off the third-party rules it does not run (listed in the report's
    ``switched_off``)."""
    from socpipe.detectors.correlation_rules import CorrelationDraft

    mappings = mappings if mappings is not None else load_field_mappings()
    report = RuleLoadReport()
    seen_ids: dict[str, str] = {}
    drafts: list[CorrelationDraft] = []
    for path, ruleset in rule_files(paths):
        report.files += 1
        try:
            for rule in _load_file(path, mappings, ruleset):
                if rule.id in seen_ids:
                    raise RuleError(
                        str(path), f"duplicate rule id {rule.id} (also in {seen_ids[rule.id]})"
                    )
                seen_ids[rule.id] = rule.source
                if isinstance(rule, CorrelationDraft):
                    drafts.append(rule)
                else:
                    report.rules.append(rule)
        except UnsupportedRuleError as error:
            report.unsupported.append(error)
        except RuleError as error:
            report.errors.append(error)
    _resolve_correlations(drafts, report)
    if profile is not None:
        profile.apply(report)
        report.profile_name, report.profile_source = profile.name, profile.source
    return report


def _resolve_correlations(drafts: list[CorrelationDraft], report: RuleLoadReport) -> None:
    """Resolve references by id or name; a correlation may reference another correlation, so
    resolve in rounds until nothing more resolves (what is left is unknown or cyclic)."""
    known = {rule.id: rule.id for rule in report.rules}
    known.update({rule.name: rule.id for rule in report.rules if rule.name})
    pending = drafts
    while pending:
        waiting = []
        for draft in pending:
            unresolved = [ref for ref in draft.references if ref not in known]
            if unresolved and any(ref in _draft_keys(pending) for ref in unresolved):
                waiting.append(draft)
                continue
            try:
                report.correlations.append(_resolve(draft, known))
            except RuleError as error:
                report.errors.append(error)
                continue
            known[draft.id] = draft.id
            if draft.name:
                known[draft.name] = draft.id
        if len(waiting) == len(pending):
            report.errors.extend(
                RuleError(draft.source, "correlation rules reference each other in a cycle")
                for draft in waiting
            )
            return
        pending = waiting


def _resolve(draft: CorrelationDraft, known: dict[str, str]) -> CorrelationRule:
    from socpipe.detectors.correlation_rules import resolve_correlation

    return resolve_correlation(draft, known)


def _draft_keys(drafts: list[CorrelationDraft]) -> set[str]:
    return {key for draft in drafts for key in (draft.id, draft.name) if key}


def _load_file(
    path: Path, mappings: FieldMappings, ruleset: str
) -> list[CompiledRule | CorrelationDraft]:
    import yaml

    from socpipe.core.yamltext import load_documents, read_bounded, yaml_problem
    from socpipe.detectors.rule_schema import key_line

    source = str(path)
    try:
        text = read_bounded(path, MAX_RULE_FILE_BYTES)
        loaded = load_documents(text, max_nodes=MAX_RULE_NODES)
        documents = [doc for doc in loaded if doc]
    except (OSError, UnicodeDecodeError) as error:
        raise RuleError(source, f"cannot read: {error}") from None
    except ValueError as error:
        # PyYAML builds dates and numbers itself and lets their errors through (a rule's
        # "date: 2026-19-29"): a broken rule, not a crash of the load (found by fuzzing).
        raise RuleError(source, f"invalid YAML value: {error}") from None
    except yaml.YAMLError as error:
        reason, line = yaml_problem(error)
        raise RuleError(source, reason, line) from None
    if not documents:
        raise RuleError(source, "empty file")
    compiled: list[CompiledRule | CorrelationDraft] = []
    for index, document in enumerate(documents):
        try:
            compiled.append(_load_document(document, source, mappings, ruleset))
        except RuleError as error:
            if error.line is None and error.key is not None:
                error = type(error)(source, error.reason, key_line(text, error.key, index))
            raise error from None
    return compiled


def _load_document(
    document: Any, source: str, mappings: FieldMappings, ruleset: str
) -> CompiledRule | CorrelationDraft:
    from socpipe.detectors.correlation_rules import parse_correlation
    from socpipe.detectors.rule_schema import shape_problem

    if not isinstance(document, dict):
        raise RuleError(source, "a rule must be a YAML mapping")
    if problem := shape_problem(document):
        key, reason = problem
        raise RuleError(source, f"{key}: {reason}", key=key)
    if "correlation" in document:
        return parse_correlation(document, source, rule_policy(), ruleset)
    if "filter" in document and "detection" not in document:
        raise UnsupportedRuleError(source, "Sigma filter documents are not supported yet")
    if "action" in document:
        raise UnsupportedRuleError(source, "multi-document 'action:' collections are deprecated")
    return compile_rule(document, source, mappings, ruleset)


def compile_rule(
    document: dict[str, Any], source: str, mappings: FieldMappings = NO_MAPPINGS, ruleset: str = ""
) -> CompiledRule:
    """Parse one rule mapping with pySigma, map its fields and compile its condition."""
    from sigma.exceptions import SigmaError, SigmaRuleLocation
    from sigma.rule import SigmaRule

    from socpipe.detectors.compiler import ConditionCompiler
    from socpipe.detectors.errors import sigma_reason
    from socpipe.detectors.rule_schema import ERROR_KEYS

    try:
        rule = SigmaRule.from_dict(
            document,
            collect_errors=True,
            source=SigmaRuleLocation(Path(source)),
            policy=rule_policy(),
        )
        if rule.errors:
            first = type(rule.errors[0]).__name__
            reasons = "; ".join(sigma_reason(error) for error in rule.errors)
            raise RuleError(source, reasons, key=ERROR_KEYS.get(first))
        logsource = RuleLogSource(
            rule.logsource.product, rule.logsource.category, rule.logsource.service
        )
        if missing := mappings.missing_for(logsource):
            raise RuleError(
                source,
                f"needs the field mapping {missing!r} ({missing}.yml), which is not in"
                f" {mappings.folder}: without it the rule could never match",
            )
        if mappings.pipeline is not None:
            mappings.pipeline.apply(rule)
        condition = ConditionCompiler(source).describe_rule(rule)
        if rule.id is None:
            raise RuleError(source, "rule has no id")
        return build_rule(
            condition,
            id=str(rule.id),
            title=rule.title,
            level=rule.level.name.lower() if rule.level else "medium",
            tags=tuple(f"{tag.namespace}.{tag.name}" for tag in rule.tags),
            logsource=logsource,
            source=source,
            description=rule.description or "",
            author=rule.author or "",
            references=tuple(rule.references or ()),
            falsepositives=tuple(rule.falsepositives or ()),
            name=rule.name or "",
            ruleset=ruleset or source,
            status=rule.status.name.lower() if rule.status else "",
        )
    except RuleError:
        raise
    except SigmaError as error:
        key = ERROR_KEYS.get(type(error).__name__)
        raise RuleError(source, sigma_reason(error), key=key) from None
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        # pySigma raises plain exceptions on some malformed rules; report, don't crash the load.
        raise RuleError(source, f"{type(error).__name__}: {error}") from None


def build_rule(condition: Node, **metadata: Any) -> CompiledRule:
    """A runnable rule from its condition's description and its metadata (the other fields of
    ``CompiledRule``): the one way rules parsed from files are made. Raises
    ``DescriptionError`` for a malformed condition."""
    matcher, prefilter = build_condition(condition, metadata["source"])
    return CompiledRule(prefilter=prefilter, condition=condition, built_matcher=matcher, **metadata)
