"""Rule profiles: which of a large third-party rule set (SigmaHQ) runs by default, and why.

A profile is data (config/sigmahq-profile.yml): per log source, the lowest level that runs for
each rule status; tags whose rules do not run; rules switched off one by one. Every choice
carries its reason, and the loader refuses one without. A rule with its own tests beside it
(``<rule>.tests.yml``: the project's rules, and any set written the same way) is curated one
by one and never filtered, wherever its folder is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from socpipe.core.errors import SocpipeError
from socpipe.core.levels import LEVELS
from socpipe.core.resources import bundled_profile_path
from socpipe.detectors.logsource import RuleLogSource
from socpipe.detectors.rules import CompiledRule, RuleLoadReport, rule_tests_file

STATUSES = ("stable", "test", "experimental", "deprecated", "unsupported")
_LOGSOURCE_KEYS = ("product", "category", "service")


class ProfileError(SocpipeError):
    """A profile file that cannot be used, naming the file, the key and the reason."""

    exit_code = 2


@dataclass(frozen=True)
class LevelPolicy:
    """The lowest level that runs, per status, for the rules of some log sources."""

    levels: Mapping[str, str]
    reason: str
    #: product/category/service the rule must have; empty for the default policy.
    logsource: Mapping[str, str] = field(default_factory=dict)

    def covers(self, logsource: RuleLogSource) -> bool:
        return all(getattr(logsource, key) == value for key, value in self.logsource.items())

    def admits(self, status: str, level: str) -> bool:
        lowest = self.levels.get(status)
        return lowest is not None and LEVELS.index(level) >= LEVELS.index(lowest)


@dataclass(frozen=True)
class RuleProfile:
    name: str
    source: str
    default: LevelPolicy
    sources: tuple[LevelPolicy, ...] = ()
    #: tag -> why rules with it do not run
    excluded_tags: Mapping[str, str] = field(default_factory=dict)
    #: rule id -> why it does not run
    disabled: Mapping[str, str] = field(default_factory=dict)
    description: str = ""

    def verdict(self, rule: CompiledRule) -> str | None:
        """None when ``rule`` runs under this profile, else the reason it does not."""
        if rule.id in self.disabled:
            return f"disabled: {self.disabled[rule.id]}"
        for tag in rule.tags:
            if tag in self.excluded_tags:
                return f"tag {tag}: {self.excluded_tags[tag]}"
        policy = next((item for item in self.sources if item.covers(rule.logsource)), self.default)
        status = rule.status or "experimental"
        if not policy.admits(status, rule.level):
            lowest = policy.levels.get(status)
            wanted = f"at least {lowest}" if lowest else "not run"
            return f"level {rule.level}, status {status} ({wanted} for this log source)"
        return None

    def apply(self, report: RuleLoadReport) -> None:
        """Switch off the rules of ``report`` this profile does not run, recording why.

        Rules with tests beside them, and rules a correlation counts, always stay.
        """
        counted = {
            rule_id for correlation in report.correlations for rule_id in correlation.rule_ids
        }
        kept: list[CompiledRule] = []
        for rule in report.rules:
            reason = None
            if rule.id not in counted and not rule_tests_file(rule).exists():
                reason = self.verdict(rule)
            if reason is None:
                kept.append(rule)
            else:
                report.switched_off.append((rule, reason))
        report.rules = kept


def load_profile(path: Path | None = None) -> RuleProfile:
    """Read a profile (default: the one shipped with socpipe); every problem is a
    ProfileError naming the file and the key."""
    # Imported here: a scan whose rules come from the rule cache never reads a profile (and
    # the configuration module brings PyYAML).
    import yaml

    from socpipe.core.config import MAX_CONFIG_BYTES, MAX_CONFIG_NODES
    from socpipe.core.yamltext import load_document, read_bounded, yaml_problem

    path = path or bundled_profile_path()
    try:
        text = read_bounded(path, MAX_CONFIG_BYTES)
        document = load_document(text, max_nodes=MAX_CONFIG_NODES)
    except (OSError, UnicodeDecodeError) as error:
        raise ProfileError(f"{path}: cannot read: {error}") from None
    except yaml.YAMLError as error:
        reason, line = yaml_problem(error)
        where = f"{path}: line {line}" if line else str(path)
        raise ProfileError(f"{where}: {reason}") from None
    try:
        return _profile(document, str(path))
    except ProfileError as error:
        raise ProfileError(f"{path}: {error}") from None


def _profile(document: Any, source: str) -> RuleProfile:
    top = _mapping(
        document,
        "top level",
        {"name", "description", "default", "sources", "excluded_tags", "disabled"},
    )
    if "default" not in top:
        raise ProfileError("default: required")
    sources = []
    for index, item in enumerate(_list(top.get("sources"), "sources")):
        where = f"sources[{index}]"
        entry = _mapping(item, where, {"logsource", "levels", "reason"})
        logsource = _mapping(entry.get("logsource"), f"{where}.logsource", set(_LOGSOURCE_KEYS))
        if not logsource:
            raise ProfileError(f"{where}.logsource: name a product, category or service")
        sources.append(
            _policy(
                entry,
                where,
                {key: _text(value, f"{where}.logsource.{key}") for key, value in logsource.items()},
            )
        )
    default = _policy(_mapping(top["default"], "default", {"levels", "reason"}), "default", {})
    excluded = {}
    for index, item in enumerate(_list(top.get("excluded_tags"), "excluded_tags")):
        where = f"excluded_tags[{index}]"
        entry = _mapping(item, where, {"tag", "reason"})
        excluded[_text(entry.get("tag"), f"{where}.tag")] = _text(
            entry.get("reason"), f"{where}.reason"
        )
    disabled = {}
    for index, item in enumerate(_list(top.get("disabled"), "disabled")):
        where = f"disabled[{index}]"
        entry = _mapping(item, where, {"id", "title", "reason"})
        rule_id = _text(entry.get("id"), f"{where}.id")
        if rule_id in disabled:
            raise ProfileError(f"{where}.id: {rule_id} is listed twice")
        disabled[rule_id] = _text(entry.get("reason"), f"{where}.reason")
    return RuleProfile(
        name=_text(top.get("name"), "name"),
        source=source,
        default=default,
        sources=tuple(sources),
        excluded_tags=excluded,
        disabled=disabled,
        description=str(top.get("description") or ""),
    )


def _policy(entry: dict[str, Any], where: str, logsource: dict[str, str]) -> LevelPolicy:
    levels = _mapping(entry.get("levels"), f"{where}.levels", set(STATUSES))
    for status, level in levels.items():
        if level not in LEVELS:
            raise ProfileError(
                f"{where}.levels.{status}: {level!r} is not one of {', '.join(LEVELS)}"
            )
    return LevelPolicy(levels, _text(entry.get("reason"), f"{where}.reason"), logsource)


def _mapping(value: Any, where: str, known: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ProfileError(f"{where}: expected a mapping")
    unknown = sorted(set(map(str, value)) - known)
    if unknown:
        raise ProfileError(f"{where}: unknown key(s): {', '.join(unknown)}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ProfileError(f"{where}: expected a list")
    return value


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ProfileError(f"{where}: required (a non-empty text)")
    return value.strip()
