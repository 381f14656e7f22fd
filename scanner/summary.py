"""The end-of-scan summary an analyst reads at a glance."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final

from socpipe.collectors.files import ReadStats
from socpipe.core.levels import SEVERITY
from socpipe.detectors.alert import Alert
from socpipe.detectors.correlation import CorrelationStats

TOP: Final = 5
#: Rules listed as the noisiest: where tuning (a profile entry, an exception) pays most.
NOISIEST: Final = 5
#: Incidents the summary names (the most severe, then the largest).
TOP_INCIDENTS: Final = 10


@dataclass
class ScanSummary:
    read: ReadStats
    rules_loaded: int = 0
    correlations_loaded: int = 0
    models_loaded: int = 0
    indicators_loaded: int = 0
    rule_errors: int = 0
    rules_unsupported: int = 0
    alerts: int = 0
    by_level: Counter[str] = field(default_factory=Counter)
    by_rule: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    by_host: Counter[str] = field(default_factory=Counter)
    by_source: Counter[str] = field(default_factory=Counter)
    by_dataset: Counter[str] = field(default_factory=Counter)
    #: The scan itself: reading, detecting, writing (the rules were loaded before).
    seconds: float = 0.0
    #: From the process's start to the end of the scan (0: not known): what the user waited,
    #: interpreter, imports and rule loading included.
    seconds_with_startup: float = 0.0
    rules_from_cache: bool = False
    correlation: CorrelationStats = field(default_factory=CorrelationStats)
    incidents: int = 0
    incidents_by_level: Counter[str] = field(default_factory=Counter)
    #: (severity, alerts, line) of the incidents to name, at most TOP_INCIDENTS of them.
    top_incidents: list[tuple[int, int, str]] = field(default_factory=list)

    def count_event(self, dataset: str) -> None:
        self.by_dataset[dataset] += 1

    def count_alert(self, alert: Alert) -> None:
        self.alerts += 1
        self.by_level[alert.rule.level] += 1
        self.by_rule[(alert.rule.level, alert.rule.title, alert.rule.id)] += 1
        if host := alert.entities.get("host.name"):
            self.by_host[str(host)] += 1
        if source := alert.entities.get("source.ip"):
            self.by_source[str(source)] += 1

    def noisiest_rules(self) -> list[tuple[tuple[str, str, str], int]]:
        """The rules that raised the most alerts, whatever their level (ties by title, id)."""
        ranked = sorted(self.by_rule.items(), key=lambda item: (-item[1], item[0][1], item[0][2]))
        return ranked[:NOISIEST]

    def count_incident(self, incident: dict[str, Any]) -> None:
        self.incidents += 1
        level = str(incident["incident.level"])
        self.incidents_by_level[level] += 1
        who = ", ".join(
            str(value)
            for name in ("host.name", "source.ip", "user.name")
            for value in incident.get(name, [])[:2]
        )
        alerts = int(incident["incident.alert_count"])
        line = f"{alerts:>7,}  {level:<13} {incident['incident.title']}" + (
            f" ({who})" if who else ""
        )
        self.top_incidents.append((SEVERITY.get(level, 0), alerts, line))
        self.top_incidents.sort(key=lambda item: (-item[0], -item[1]))
        del self.top_incidents[TOP_INCIDENTS:]

    @property
    def events_per_second(self) -> float:
        return self.read.events / self.seconds if self.seconds > 0 else 0.0

    @property
    def events_per_second_with_startup(self) -> float:
        seconds = self.seconds_with_startup
        return self.read.events / seconds if seconds > 0 else 0.0

    def render(self) -> str:
        read = self.read
        lines = [
            "socpipe scan summary",
            f"  files read        {read.files:,}"
            + (f" ({len(read.unreadable_files)} unreadable)" if read.unreadable_files else ""),
            f"  events            {read.events:,}  ({self.events_per_second:,.0f} events/s"
            f" in {self.seconds:.1f} s"
            + (
                f"; {self.events_per_second_with_startup:,.0f} events/s in"
                f" {self.seconds_with_startup:.1f} s with start-up)"
                if self.seconds_with_startup > 0
                else ")"
            ),
            f"  not parsed        {read.unparsed:,} (kept as generic events)",
        ]
        if read.truncated or read.invalid_utf8:
            lines.append(
                f"  truncated lines   {read.truncated:,}; invalid UTF-8 lines {read.invalid_utf8:,}"
            )
        if read.future_timestamps:
            lines.append(
                f"  in the future     {read.future_timestamps:,} events dated after their file"
                " was last written (time set to that moment, tagged socpipe_future_timestamp)"
            )
        if zoneless := len(read.zoneless_files):
            lines.append(
                f"  no time zone      {zoneless:,} files with times without an offset, read as"
                " UTC (give --timezone)"
            )
        if read.missing_records or read.damaged:
            lines.append(
                f"  damaged files     {read.missing_records:,} EVTX records unreadable or"
                " missing (listed below)"
            )
        lines.append(
            f"  rules             {self.rules_loaded:,} loaded, {self.rule_errors:,} with errors,"
            f" {self.rules_unsupported:,} unsupported; {self.correlations_loaded:,} correlations"
            + (" (from the rule cache)" if self.rules_from_cache else "")
            + (f"; {self.models_loaded} anomaly models" if self.models_loaded else "")
            + (f"; {self.indicators_loaded:,} indicators" if self.indicators_loaded else "")
        )
        lost = self.correlation.late + self.correlation.groups_evicted
        if lost or self.correlation.missing_group_field:
            lines.append(
                f"  correlation       {self.correlation.late:,} matches too late,"
                f" {self.correlation.groups_evicted:,} groups evicted at the memory cap,"
                f" {self.correlation.missing_group_field:,} matches without a group-by field"
            )
        if self.by_dataset:
            kinds = ", ".join(f"{name} {count:,}" for name, count in self.by_dataset.most_common(6))
            lines.append(f"  event kinds       {kinds}")
        levels = sorted(self.by_level.items(), key=lambda item: -SEVERITY.get(item[0], 0))
        level_text = ", ".join(f"{level} {count:,}" for level, count in levels) or "none"
        lines.append(f"  alerts            {self.alerts:,}  ({level_text})")
        if self.by_rule:
            lines.append("  alerts by rule:")
            ranked = sorted(
                self.by_rule.items(), key=lambda item: (-SEVERITY.get(item[0][0], 0), -item[1])
            )
            for (level, title, _rule_id), count in ranked[:15]:
                lines.append(f"    {count:>7,}  {level:<13} {title}")
            if len(ranked) > 15:
                lines.append(f"    ... and {len(ranked) - 15} more rules")
            lines.append("  noisiest rules:")
            for (level, title, _rule_id), count in self.noisiest_rules():
                share = 100 * count / self.alerts
                lines.append(f"    {count:>7,}  {share:>3.0f} %  {level:<13} {title}")
        if self.incidents:
            levels = sorted(
                self.incidents_by_level.items(), key=lambda item: -SEVERITY.get(item[0], 0)
            )
            level_text = ", ".join(f"{level} {count:,}" for level, count in levels)
            lines.append(f"  incidents         {self.incidents:,}  ({level_text})")
            lines.append("  top incidents (alerts, level, what):")
            lines.extend(f"    {line}" for _, _, line in self.top_incidents)
        for label, counter in (("top hosts", self.by_host), ("top sources", self.by_source)):
            if counter:
                top = ", ".join(f"{name} ({count:,})" for name, count in counter.most_common(TOP))
                lines.append(f"  {label:<17} {top}")
        for problem in read.unreadable_files:
            lines.append(f"  unreadable: {problem}")
        for problem in read.damaged:
            lines.append(f"  damaged: {problem}")
        return "\n".join(lines)
