"""One scan: read files, detect, write alerts, summarise.

Input is streamed event by event (constant memory whatever the input size); alerts are
written as they are found, so an interrupted scan keeps what it had found.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO
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
from socpipe.detectors.indicators import IndicatorMatcher, IndicatorStore
from socpipe.detectors.rules import RuleLoadReport, load_rules
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
) -> ScanSummary:
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
    output = JsonLinesWriter(options.out) if options.out is not None else nullcontext(None)
    with output as sink:
        if options.jobs > 1 and not watchers:
            scanner = PartScanner(
                detector.engine, context, options.format_name, options.max_line_bytes
            )
            parts = split_into_parts(files, options.part_bytes)
            _scan_with_workers(scanner, parts, options.jobs, detector, summary, progress, sink)
        else:
            if options.jobs > 1:
                stderr.write(
                    "socpipe scan: anomaly models and indicators need every event in one"
                    " process; --jobs ignored\n"
                )
            _scan_in_process(reader, files, detector, summary, progress, sink)
        _emit(detector.flush(), summary, sink)
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
    sink: JsonLinesWriter | None,
) -> None:
    for event in reader.read(files):
        summary.count_event(event.get("event.dataset", "unknown"))
        _emit(detector.process(event), summary, sink)
        if reader.stats.events % 1024 == 0:
            progress.update(reader.bytes_read, reader.stats.events, summary.alerts)


def _scan_with_workers(
    scanner: PartScanner,
    parts: Iterable[FilePart],
    jobs: int,
    detector: Detector,
    summary: ScanSummary,
    progress: Progress,
    sink: JsonLinesWriter | None,
) -> None:
    done_bytes = 0
    for part in scan_parts(scanner, parts, jobs):
        summary.read.add(part.stats)
        summary.by_dataset.update(part.datasets)
        for event, positions in part.matches:
            matched = [detector.engine.rules[position] for position in positions]
            _emit(detector.process_matches(event, matched), summary, sink)
        done_bytes += part.size
        progress.update(min(done_bytes, progress.total), summary.read.events, summary.alerts)


def _emit(alerts: list[Alert], summary: ScanSummary, sink: JsonLinesWriter | None) -> None:
    for alert in alerts:
        summary.count_alert(alert)
        if sink is not None:
            sink.write(alert.to_dict())
