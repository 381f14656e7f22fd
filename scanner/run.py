"""One scan: read files, detect, group alerts into incidents, write both, summarise.

Input is streamed event by event (constant memory whatever the input size); alerts are
written as they are found, so an interrupted scan keeps what it had found. An incident is
written once, when no alert can join it any more (or at the end of the input).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from socpipe.collectors.files import (
    DEFAULT_MAX_LINE_BYTES,
    FileEventReader,
    FilePart,
    LineEventIds,
    expand_paths,
    split_into_parts,
)
from socpipe.collectors.parsers import ParseContext
from socpipe.collectors.zones import UnsetZone
from socpipe.core.resources import bundled_rules_dir
from socpipe.detectors.alert import Alert
from socpipe.detectors.detection import Detector
from socpipe.detectors.incidents import IncidentTracker
from socpipe.detectors.indicators import IndicatorMatcher, IndicatorStore
from socpipe.detectors.rules import RuleLoadReport, load_rules
from socpipe.detectors.suppression import Suppressor
from socpipe.detectors.watcher import EventWatcher
from socpipe.scanner.isolation import stream_in_child
from socpipe.scanner.parallel import DEFAULT_PART_BYTES, PartScanner, scan_parts
from socpipe.scanner.progress import Progress
from socpipe.scanner.summary import ScanSummary
from socpipe.sinks.jsonlines import JsonLinesWriter


@dataclass(frozen=True)
class ScanOptions:
    paths: Sequence[Path]
    #: Rule files and folders; empty: the rules shipped with socpipe.
    rule_paths: Sequence[Path] = ()
    format_name: str = "auto"
    agency_id: str = "unknown"
    agency_name: str | None = None
    #: Zone of times without an offset; None: read as UTC, with a warning per file needing it.
    timezone: str | None = None
    out: Path | None = None
    #: Where incidents are written as JSON Lines (``-``: standard output).
    incidents_out: Path | None = None
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    progress: bool = True
    #: Worker processes for parsing and matching (see scanner.parallel); 1 scans in-process.
    jobs: int = 1
    part_bytes: int = DEFAULT_PART_BYTES


def run_scan(
    options: ScanOptions,
    stderr: TextIO = sys.stderr,
    rules: RuleLoadReport | None = None,
    models: Sequence[EventWatcher] = (),
    indicators: IndicatorStore | None = None,
    suppressor: Suppressor | None = None,
) -> ScanSummary:
    """Scan; alerts a ``suppressor`` holds back are counted there instead of written."""
    if rules is None:
        rules = load_rules(options.rule_paths or [bundled_rules_dir()])
    watchers = [*models, *([IndicatorMatcher(indicators)] if indicators is not None else [])]
    # Events get their ids only when they match or meet a watcher: most never reach output.
    detector = Detector(rules, watchers=watchers, identify=LineEventIds())
    zone = ZoneInfo(options.timezone) if options.timezone is not None else UnsetZone()
    context = ParseContext(options.agency_id, options.agency_name, zone)
    # EVTX files are parsed in a child process: a crash of the native parser costs one file.
    reader = FileEventReader(
        context,
        options.format_name,
        options.max_line_bytes,
        line_ids=False,
        isolate=stream_in_child,
    )
    files = expand_paths(options.paths)
    summary = ScanSummary(
        read=reader.stats,
        rules_loaded=len(rules.rules),
        correlations_loaded=len(rules.correlations),
        models_loaded=len(models),
        indicators_loaded=indicators.loaded if indicators is not None else 0,
        rule_errors=len(rules.errors),
        rules_unsupported=len(rules.unsupported),
    )
    total = sum(path.stat().st_size for path in files if path.exists())
    progress = Progress(stderr, total, options.progress)
    started = time.monotonic()
    with ExitStack() as stack:
        alerts_out = (
            stack.enter_context(JsonLinesWriter(options.out)) if options.out is not None else None
        )
        incidents_out = (
            stack.enter_context(JsonLinesWriter(options.incidents_out))
            if options.incidents_out is not None
            else None
        )
        output = ScanOutput(IncidentTracker(), summary, alerts_out, incidents_out, suppressor)
        if options.jobs > 1 and not watchers:
            scanner = PartScanner(
                detector.engine, context, options.format_name, options.max_line_bytes
            )
            parts = split_into_parts(files, options.part_bytes)
            _scan_with_workers(scanner, parts, options.jobs, detector, summary, progress, output)
        else:
            if options.jobs > 1:
                stderr.write(
                    "socpipe scan: anomaly models and indicators need every event in one"
                    " process; --jobs ignored\n"
                )
            _scan_in_process(reader, files, detector, summary, progress, output)
        output.emit(detector.flush())
        output.finish()
    summary.correlation = detector.correlations.stats
    progress.update(total, summary.read.events, summary.alerts, force=True)
    progress.finish()
    summary.seconds = time.monotonic() - started
    return summary


def _scan_in_process(
    reader: FileEventReader,
    files: list[Path],
    detector: Detector,
    summary: ScanSummary,
    progress: Progress,
    output: ScanOutput,
) -> None:
    for event in reader.read(files):
        summary.count_event(event.get("event.dataset", "unknown"))
        if alerts := detector.process(event):
            output.emit(alerts)
        if reader.stats.events % 1024 == 0:
            progress.update(reader.bytes_read, reader.stats.events, summary.alerts)


def _scan_with_workers(
    scanner: PartScanner,
    parts: Iterable[FilePart],
    jobs: int,
    detector: Detector,
    summary: ScanSummary,
    progress: Progress,
    output: ScanOutput,
) -> None:
    done_bytes = 0
    for part in scan_parts(scanner, parts, jobs):
        summary.read.add(part.stats)
        summary.by_dataset.update(part.datasets)
        for event, positions in part.matches:
            matched = [detector.engine.rules[position] for position in positions]
            if alerts := detector.process_matches(event, matched):
                output.emit(alerts)
        done_bytes += part.size
        progress.update(min(done_bytes, progress.total), summary.read.events, summary.alerts)


class ScanOutput:
    """Where a scan's alerts go: through the suppressions (held back alerts are counted
    there), into incidents, the summary, and the output files."""

    def __init__(
        self,
        tracker: IncidentTracker,
        summary: ScanSummary,
        alerts_out: JsonLinesWriter | None,
        incidents_out: JsonLinesWriter | None,
        suppressor: Suppressor | None = None,
    ) -> None:
        self.tracker = tracker
        self.summary = summary
        self.alerts_out = alerts_out
        self.incidents_out = incidents_out
        self.suppressor = suppressor

    def emit(self, alerts: list[Alert]) -> None:
        """The alerts of one event (or the end of input), each stamped with its incident."""
        if self.suppressor is not None:
            alerts = self.suppressor.filter(alerts)
        incidents = self.tracker.assign(alerts)
        for alert, incident in zip(alerts, incidents, strict=True):
            self.summary.count_alert(alert)
            if self.alerts_out is not None:
                document = alert.to_dict()
                document["incident.id"] = incident
                self.alerts_out.write(document)
        self._write(self.tracker.closed())

    def finish(self) -> None:
        self._write(self.tracker.flush())

    def _write(self, incidents: list[dict[str, Any]]) -> None:
        for incident in incidents:
            self.summary.count_incident(incident)
            if self.incidents_out is not None:
                self.incidents_out.write(incident)
