"""Load Sigma rule files with pySigma, map their fields, and compile them.

Loading a rule set never stops at the first bad rule: every file is tried, every problem is
kept with its file and reason, and the valid rules are used (as pySigma's collection loader
does). Unsupported-but-valid rules are reported apart from broken ones.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from sigma.exceptions import SigmaError, SigmaRuleLocation
from sigma.policy import SigmaPolicy
from sigma.policy.regex_engine import PythonRegexEngine
from sigma.processing.pipeline import ProcessingPipeline
from sigma.rule import SigmaLogSource, SigmaRule

from detectors.compiler import Clauses, ConditionCompiler
from detectors.correlation_rules import (
    CorrelationDraft,
    CorrelationRule,
    parse_correlation,
    resolve_correlation,
)
from detectors.errors import RuleError, UnsupportedRuleError, sigma_reason
from detectors.values import Matcher

if TYPE_CHECKING:  # profile.py builds on this module
    from detectors.profile import RuleProfile

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PIPELINE_DIR = PROJECT_ROOT / "config" / "pipelines"
DEFAULT_RULE_DIR = PROJECT_ROOT / "rules"
LEVELS = ("informational", "low", "medium", "high", "critical")
# libyaml's safe loader when PyYAML was built with it: same safety, about ten times faster,
# which matters when loading the few thousand SigmaHQ rules at start-up.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# pySigma 2 rejects regexes RE2 cannot run; socpipe runs those on Python re instead (with a
# warning, see detectors/regex.py), so validation uses Python's syntax. Template variables and
# external sources stay disabled, as in pySigma's safe default.
RULE_POLICY = SigmaPolicy(regex_engine=PythonRegexEngine())


@dataclass(frozen=True)
class CompiledRule:
    """A rule ready to run: its metadata and the compiled matcher."""

    id: str
    title: str
    level: str
    tags: tuple[str, ...]
    logsource: SigmaLogSource
    matcher: Matcher
    #: Necessary clauses for the engine's prefilter, rarest first (empty: none known).
    prefilter: Clauses
    source: str
    description: str = ""
    author: str = ""
    references: tuple[str, ...] = ()
    falsepositives: tuple[str, ...] = ()
    name: str = ""
    #: Sigma status (stable, test, experimental, ...); empty when the rule states none.
    status: str = ""


@dataclass
class RuleLoadReport:
    """What a load produced: usable rules, broken rules and valid-but-unsupported rules."""

    rules: list[CompiledRule] = field(default_factory=list)
    correlations: list[CorrelationRule] = field(default_factory=list)
    errors: list[RuleError] = field(default_factory=list)
    unsupported: list[UnsupportedRuleError] = field(default_factory=list)
    files: int = 0
    #: Valid rules a profile (detectors/profile.py) does not run, with the reason.
    switched_off: list[tuple[CompiledRule, str]] = field(default_factory=list)


def load_pipeline(directory: Path = DEFAULT_PIPELINE_DIR) -> ProcessingPipeline:
    """All field-mapping pipelines of a folder, merged in priority order."""
    merged: ProcessingPipeline | None = None
    for path in sorted(directory.glob("*.yml")):
        with path.open(encoding="utf-8") as handle:
            pipeline = ProcessingPipeline.from_dict(yaml.safe_load(handle))
        merged = pipeline if merged is None else merged + pipeline
    return merged if merged is not None else ProcessingPipeline()


def rule_files(paths: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix in (".yml", ".yaml")))
        else:
            files.append(path)
    # Test events kept beside the rules are not rules.
    return [path for path in files if not path.name.endswith((".tests.yml", ".tests.yaml"))]


def load_rules(
    paths: Iterable[Path],
    pipeline: ProcessingPipeline | None = None,
    profile: RuleProfile | None = None,
) -> RuleLoadReport:
    """Load every rule file below ``paths``; problems are collected, never raised. A
    ``profile`` then switches off the third-party rules it does not run (listed in the
    report's ``switched_off``)."""
    pipeline = pipeline if pipeline is not None else load_pipeline()
    report = RuleLoadReport()
    seen_ids: dict[str, str] = {}
    drafts: list[CorrelationDraft] = []
    for path in rule_files(paths):
        report.files += 1
        try:
            for rule in _load_file(path, pipeline):
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
                report.correlations.append(resolve_correlation(draft, known))
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


def _draft_keys(drafts: list[CorrelationDraft]) -> set[str]:
    return {key for draft in drafts for key in (draft.id, draft.name) if key}


def _load_file(path: Path, pipeline: ProcessingPipeline) -> list[CompiledRule | CorrelationDraft]:
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
        documents = [doc for doc in yaml.load_all(text, Loader=SAFE_LOADER) if doc]
    except (OSError, UnicodeDecodeError) as error:
        raise RuleError(source, f"cannot read: {error}") from None
    except yaml.YAMLError as error:
        raise RuleError(source, f"invalid YAML: {error}".replace("\n", " ")) from None
    if not documents:
        raise RuleError(source, "empty file")
    compiled: list[CompiledRule | CorrelationDraft] = []
    for document in documents:
        if not isinstance(document, dict):
            raise RuleError(source, "a rule must be a YAML mapping")
        if "correlation" in document:
            compiled.append(parse_correlation(document, source, RULE_POLICY))
            continue
        if "filter" in document and "detection" not in document:
            raise UnsupportedRuleError(source, "Sigma filter documents are not supported yet")
        if "action" in document:
            raise UnsupportedRuleError(
                source, "multi-document 'action:' collections are deprecated"
            )
        compiled.append(compile_rule(document, source, pipeline))
    return compiled


def compile_rule(document: dict, source: str, pipeline: ProcessingPipeline) -> CompiledRule:
    """Parse one rule mapping with pySigma, map its fields and compile its condition."""
    try:
        rule = SigmaRule.from_dict(
            document,
            collect_errors=True,
            source=SigmaRuleLocation(Path(source)),
            policy=RULE_POLICY,
        )
        if rule.errors:
            raise RuleError(source, "; ".join(sigma_reason(error) for error in rule.errors))
        pipeline.apply(rule)
        matcher, prefilter = ConditionCompiler(source).compile_rule(rule)
    except RuleError:
        raise
    except SigmaError as error:
        raise RuleError(source, sigma_reason(error)) from None
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        # pySigma raises plain exceptions on some malformed rules; report, don't crash the load.
        raise RuleError(source, f"{type(error).__name__}: {error}") from None
    if rule.id is None:
        raise RuleError(source, "rule has no id")
    return CompiledRule(
        id=str(rule.id),
        title=rule.title,
        level=rule.level.name.lower() if rule.level else "medium",
        tags=tuple(f"{tag.namespace}.{tag.name}" for tag in rule.tags),
        logsource=rule.logsource,
        matcher=matcher,
        prefilter=prefilter,
        source=source,
        description=rule.description or "",
        author=rule.author or "",
        references=tuple(rule.references or ()),
        falsepositives=tuple(rule.falsepositives or ()),
        name=rule.name or "",
        status=rule.status.name.lower() if rule.status else "",
    )
