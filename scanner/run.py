"""One scan: read files, detect, group alerts into incidents, write both, summarise.

Input is streamed event by event (constant memory whatever the input size); alerts are
written as they are found, so an interrupted scan keeps what it had found. An incident is
written once, when no alert can join it any more (or at the end of the input).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TextIO
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
from socpipe.core.event import Event
from socpipe.core.resources import bundled_rules_dir
from socpipe.detectors.alert import Alert
from socpipe.detectors.correlation import CorrelationEngine
from socpipe.detectors.detection import Detector
from socpipe.detectors.incidents import IncidentTracker
from socpipe.detectors.indicators import IndicatorMatcher, IndicatorStore
from socpipe.detectors.rules import RuleLoadReport, load_rules
from socpipe.detectors.suppression import Suppressor
from socpipe.detectors.watcher import EventWatcher
from socpipe.scanner.isolation import ChildStreams
from socpipe.scanner.parallel import DEFAULT_PART_BYTES, PartScanner, scan_parts
from socpipe.scanner.progress import Progress
from socpipe.scanner.summary import ScanSummary
from socpipe.sinks.jsonlines import JsonLinesWriter

#: Building the rule groups a Windows scan meets with every SigmaHQ rule (prefilter sets and
#: matchers) takes about half a second, spread over the first thousands of events of the
#: first files; workers forked before would each build them again.
DEFAULT_WARM_UP_SECS: Final = 1.0
WARM_UP_QUIET_SECS: Final = 0.25


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
    #: When the process started (``time.monotonic()`` clock), for the summary's events/s
    #: with start-up; None when not known.
    process_started: float | None = None
    #: With workers: how long at most this process scans the beginning of the input itself
    #: before forking them, so that they inherit the rule groups it built (it stops sooner
    #: once WARM_UP_QUIET_SECS pass without a new group; a scan that ends sooner never
    #: starts workers).
    warm_up_secs: float = DEFAULT_WARM_UP_SECS


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
    identify = LineEventIds()
    # Windows judged by events alone: the alerts come in the same order however fast the scan
    # runs, in one process or with workers.
    correlations = CorrelationEngine(
        rules.correlations, deferred_ids=identify, sweep_interval_secs=math.inf
    )
    detector = Detector(rules, correlations, watchers=watchers, identify=identify)
    zone = ZoneInfo(options.timezone) if options.timezone is not None else UnsetZone()
    context = ParseContext(options.agency_id, options.agency_name, zone)
    # EVTX files are parsed in a child process: a crash of the native parser costs one file.
    evtx_child = ChildStreams()
    reader = FileEventReader(
        context,
        options.format_name,
        options.max_line_bytes,
        line_ids=False,
        isolate=evtx_child,
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
        rules_from_cache=rules.cached,
    )
    total = sum(path.stat().st_size for path in files if path.exists())
    progress = Progress(stderr, total, options.progress)
    started = time.monotonic()
    with ExitStack() as stack:
        stack.callback(evtx_child.close)
        alerts_out = (
            stack.enter_context(JsonLinesWriter(options.out)) if options.out is not None else None
        )
        incidents_out = (
            stack.enter_context(JsonLinesWriter(options.incidents_out))
            if options.incidents_out is not None
            else None
        )
        output = ScanOutput(IncidentTracker(), summary, alerts_out, incidents_out, suppressor)
        scan = _Scan(detector, summary, progress, output)
        if options.jobs > 1 and not watchers:
            scanner = PartScanner(
                detector.engine, context, options.format_name, options.max_line_bytes
            )
            parts = iter(split_into_parts(files, options.part_bytes))
            scan.warm_up(reader, parts, options.warm_up_secs)
            scan.with_workers(scanner, parts, options.jobs, options.part_bytes)
        else:
            if options.jobs > 1:
                stderr.write(
                    "socpipe scan: anomaly models and indicators need every event in one"
                    " process; --jobs ignored\n"
                )
            scan.in_process(reader, files)
        output.emit(detector.flush())
        output.finish()
    summary.correlation = detector.correlations.stats
    progress.update(total, summary.read.events, summary.alerts, force=True)
    progress.finish()
    finished = time.monotonic()
    summary.seconds = finished - started
    if options.process_started is not None:
        summary.seconds_with_startup = finished - options.process_started
    return summary


class _Scan:
    """Reading: in this process, or in workers after a warm-up here; what they find goes to
    the detector and the scan's output."""

    def __init__(
        self, detector: Detector, summary: ScanSummary, progress: Progress, output: ScanOutput
    ) -> None:
        self.detector = detector
        self.summary = summary
        self.progress = progress
        self.output = output
        #: Input done so far, for progress, when scanning by parts.
        self.done_bytes = 0

    def in_process(self, reader: FileEventReader, files: list[Path]) -> None:
        for event in reader.read(files):
            self.event(event)
            if reader.stats.events % 1024 == 0:
                self.progress.update(reader.bytes_read, reader.stats.events, self.summary.alerts)

    def event(self, event: Event) -> None:
        self.summary.count_event(event.get("event.dataset", "unknown"))
        if alerts := self.detector.process(event):
            self.output.emit(alerts)

    def warm_up(self, reader: FileEventReader, parts: Iterator[FilePart], seconds: float) -> None:
        """Scan parts in this process until it has built no new rule group for
        ``WARM_UP_QUIET_SECS``, or for ``seconds`` at most (``ScanOptions.warm_up_secs``)."""
        engine = self.detector.engine
        now = time.monotonic()
        deadline, last_new_group, groups = now + seconds, now, engine.groups_built
        while now < deadline and now - last_new_group < WARM_UP_QUIET_SECS:
            part = next(parts, None)
            if part is None:
                return
            for event in reader.read_part(part):
                self.event(event)
            self.part_done(part.size)
            now = time.monotonic()
            if engine.groups_built != groups:
                last_new_group, groups = now, engine.groups_built

    def with_workers(
        self, scanner: PartScanner, parts: Iterator[FilePart], jobs: int, batch_bytes: int
    ) -> None:
        """The rest of the input read and matched by workers, small parts handed over
        together up to ``batch_bytes``; their results in input order."""
        detector, summary = self.detector, self.summary
        rules = detector.engine.rules
        for part in scan_parts(scanner, parts, jobs, batch_bytes):
            summary.read.add(part.stats)
            summary.by_dataset.update(part.datasets)
            for event, positions in part.matches:
                matched = [rules[position] for position in positions]
                if alerts := detector.process_matches(event, matched):
                    self.output.emit(alerts)
            self.part_done(part.size)

    def part_done(self, size: int) -> None:
        self.done_bytes += size
        progress = self.progress
        progress.update(
            min(self.done_bytes, progress.total), self.summary.read.events, self.summary.alerts
        )


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
