"""One scan: read files, detect, write alerts, summarise.

Input is streamed event by event (constant memory whatever the input size); alerts are
written as they are found, so an interrupted scan keeps what it had found.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TextIO
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
from socpipe.core.event import Event
from socpipe.core.resources import bundled_rules_dir
from socpipe.detectors.alert import Alert
from socpipe.detectors.correlation import CorrelationEngine
from socpipe.detectors.detection import Detector
from socpipe.detectors.indicators import IndicatorMatcher, IndicatorStore
from socpipe.detectors.rules import RuleLoadReport, load_rules
from socpipe.detectors.suppression import Suppressor
from socpipe.detectors.watcher import EventWatcher
from socpipe.scanner.parallel import DEFAULT_PART_BYTES, PartScanner, scan_parts
from socpipe.scanner.progress import Progress
from socpipe.scanner.summary import ScanSummary
from socpipe.sinks.jsonlines import JsonLinesWriter

#: Building the rule groups a Windows scan meets with every SigmaHQ rule (prefilter sets and
#: matchers) takes about half a second, spread over the first thousands of events of the
#: first files; workers forked before would each build them again.
DEFAULT_WARM_UP_SECS: Final = 2.0
WARM_UP_QUIET_SECS: Final = 0.25


@dataclass(frozen=True)
class ScanOptions:
    paths: Sequence[Path]
    #: Rule files and folders; empty: the rules shipped with socpipe.
    rule_paths: Sequence[Path] = ()
    format_name: str = "auto"
    agency_id: str = "unknown"
    agency_name: str | None = None
    timezone: str = "UTC"
    out: Path | None = None
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
    context = ParseContext(options.agency_id, options.agency_name, ZoneInfo(options.timezone))
    reader = FileEventReader(context, options.format_name, options.max_line_bytes, line_ids=False)
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
    output = JsonLinesWriter(options.out) if options.out is not None else nullcontext(None)
    with output as sink:
        scan = _Scan(detector, summary, progress, sink, suppressor)
        if options.jobs > 1 and not watchers:
            scanner = PartScanner(
                detector,
                context,
                options.format_name,
                options.max_line_bytes,
                sink is not None,
                suppressor,
            )
            parts = iter(split_into_parts(files, options.part_bytes))
            scan.warm_up(reader, parts, options.warm_up_secs)
            scan.with_workers(scanner, parts, options.jobs)
        else:
            if options.jobs > 1:
                stderr.write(
                    "socpipe scan: anomaly models and indicators need every event in one"
                    " process; --jobs ignored\n"
                )
            scan.in_process(reader, files)
        scan.emit(detector.flush())
    summary.correlation = detector.correlations.stats
    progress.update(total, summary.read.events, summary.alerts, force=True)
    progress.finish()
    finished = time.monotonic()
    summary.seconds = finished - started
    if options.process_started is not None:
        summary.seconds_with_startup = finished - options.process_started
    return summary


class _Scan:
    """Where a scan's events and alerts go: the detector, the summary, the progress line, the
    suppressions and the output."""

    def __init__(
        self,
        detector: Detector,
        summary: ScanSummary,
        progress: Progress,
        sink: JsonLinesWriter | None,
        suppressor: Suppressor | None,
    ) -> None:
        self.detector = detector
        self.summary = summary
        self.progress = progress
        self.sink = sink
        self.suppressor = suppressor
        #: Input done so far, for progress, when scanning by parts.
        self.done_bytes = 0

    def in_process(self, reader: FileEventReader, files: list[Path]) -> None:
        for event in reader.read(files):
            self.event(event)
            if reader.stats.events % 1024 == 0:
                self.progress.update(reader.bytes_read, reader.stats.events, self.summary.alerts)

    def event(self, event: Event) -> None:
        self.summary.count_event(event.get("event.dataset", "unknown"))
        self.emit(self.detector.process(event))

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

    def with_workers(self, scanner: PartScanner, parts: Iterator[FilePart], jobs: int) -> None:
        """The workers' results in input order: their alerts counted and written in the order
        a one-process scan raises them (``Detector.process_matches``), and the events of
        rules that correlations count fed to them here."""
        detector, summary, sink = self.detector, self.summary, self.sink
        rules = detector.engine.rules
        for part in scan_parts(scanner, parts, jobs):
            summary.read.add(part.stats)
            summary.by_dataset.update(part.datasets)
            for positions, made, event in part.matches:
                for position, alert in zip(positions, made, strict=True):
                    rule = rules[position]
                    if alert is not None and alert.held is not None:
                        self.emit([Alert.from_match(rule, alert.held)])
                    elif alert is not None:
                        summary.count(rule, alert.host, alert.source)
                        if sink is not None:
                            sink.write_line(alert.line)
                    if event is not None:
                        self.emit(detector.correlations.observe(rule.id, event))
            self.part_done(part.size)

    def part_done(self, size: int) -> None:
        self.done_bytes += size
        progress = self.progress
        progress.update(
            min(self.done_bytes, progress.total), self.summary.read.events, self.summary.alerts
        )

    def emit(self, alerts: list[Alert]) -> None:
        if self.suppressor is not None and alerts:
            alerts = self.suppressor.filter(alerts)
        for alert in alerts:
            self.summary.count_alert(alert)
            if self.sink is not None:
                self.sink.write(alert.to_dict())
