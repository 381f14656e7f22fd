"""``socpipe scan --jobs N``: parsing, Sigma matching and alert building in N worker processes.

Parsing and matching are per event and stateless, and they are most of a scan's time; the
correlation windows are not (a brute force spans files and parts of files). So workers read
parts of the input (a file, a byte range of a large text file, a range of chunks of a large
EVTX file), match them, and make the alerts of the rules that matched; this process counts
those alerts, writes them in input order and feeds the correlations. The alerts, their ids
and the summary are therefore those of a one-process scan.

What crosses between processes is small: the part to read (a path and two offsets) goes to
a worker; back come the read counters and, per event that matched, the positions of its rules
and each alert as its encoded line. The event itself comes back only when a correlation
counts one of its rules (a correlation alert lists its events).

Parts are handed out from one queue, so a worker that is done takes the next part (work
stealing), and results are kept until their turn: a slow part holds back the output, and the
workers only once ``AHEAD_PER_JOB * jobs`` parts are done or in flight, the bound that keeps
memory flat whatever the input size.

Workers are forked after the rules are loaded and after this process has scanned the
beginning of the input itself (``ScanOptions.warm_up_secs``), so that they inherit the rule
groups, prefilter indexes and matchers it built instead of each building them again.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple

from socpipe.collectors.files import FileEventReader, FilePart, LineEventIds, ReadStats
from socpipe.collectors.parsers import ParseContext
from socpipe.core.errors import SocpipeError
from socpipe.core.event import Event
from socpipe.detectors.alert import Alert
from socpipe.detectors.detection import Detector
from socpipe.detectors.suppression import Suppressor
from socpipe.scanner.summary import summary_entities
from socpipe.sinks.jsonlines import encode_line

#: Input per unit of work: big enough that a part's bookkeeping is negligible, small enough
#: that two cores share even a single file.
DEFAULT_PART_BYTES = 4 << 20
#: Parts in flight or waiting for their turn, per worker.
AHEAD_PER_JOB = 4


class MadeAlert(NamedTuple):
    """An alert a worker made: what this process counts and writes of it."""

    #: The alert's line of the output (empty when no output is written).
    line: bytes
    host: str | None
    source: str | None
    #: The matched event, when one of the scan's suppressions names the rule: this process
    #: makes the alert again and its suppressions judge it (and count what they hold back).
    held: Event | None = None


class MatchedEvent(NamedTuple):
    """An event that matched: its rules' positions in the rule list, in rule-set order; for
    each, the alert it raised (None: the rule only feeds correlations); and the event itself
    when a correlation counts one of the rules."""

    positions: list[int]
    alerts: list[MadeAlert | None]
    event: Event | None


@dataclass
class PartResult:
    """What a worker found in one part: read counters, events per dataset, matched events."""

    size: int
    stats: ReadStats
    datasets: Counter[str] = field(default_factory=Counter)
    matches: list[MatchedEvent] = field(default_factory=list)


@dataclass(frozen=True)
class PartScanner:
    """Reads, matches and makes the alerts of one part; lives in each forked worker."""

    detector: Detector
    context: ParseContext
    format_name: str
    max_line_bytes: int
    #: Encode each alert's output line (the scan writes alerts out).
    encode: bool
    #: The scan's suppressions: alerts of the rules they name go back whole.
    suppressor: Suppressor | None = None

    @cached_property
    def _positions(self) -> dict[int, int]:
        """Rule object -> its position in the rule list, which both processes share."""
        return {id(rule): position for position, rule in enumerate(self.detector.engine.rules)}

    def scan(self, part: FilePart) -> PartResult:
        reader = FileEventReader(
            self.context, self.format_name, self.max_line_bytes, line_ids=False
        )
        identify = LineEventIds()
        result = PartResult(part.size, reader.stats)
        positions, detector, encode = self._positions, self.detector, self.encode
        suppressor = self.suppressor
        for event in reader.read_part(part):
            result.datasets[event.get("event.dataset", "unknown")] += 1
            rules = detector.engine.match(event)
            if not rules:
                continue
            identify(event)
            made: list[MadeAlert | None] = []
            counted = False
            for rule in rules:
                if not detector.raises_own_alert(rule):
                    made.append(None)
                elif suppressor is not None and suppressor.concerns(rule.id):
                    made.append(MadeAlert(b"", None, None, event))
                else:
                    alert = Alert.from_match(rule, event)
                    line = encode_line(alert.to_dict()) if encode else b""
                    made.append(MadeAlert(line, *summary_entities(alert)))
                counted = counted or detector.feeds_correlations(rule)
            result.matches.append(
                MatchedEvent(
                    [positions[id(rule)] for rule in rules], made, event if counted else None
                )
            )
        return result


# The scanner the forked workers inherit (set just before the pool forks them).
_scanner: PartScanner | None = None


def _scan_part(part: FilePart) -> PartResult:
    assert _scanner is not None, "worker started without a part scanner"
    return _scanner.scan(part)


class WorkerDied(SocpipeError):
    """A worker process ended without returning its part (killed, out of memory)."""


def scan_parts(scanner: PartScanner, parts: Iterable[FilePart], jobs: int) -> Iterator[PartResult]:
    """Each part's result, in the order of ``parts``.

    concurrent.futures rather than multiprocessing.Pool: a Pool whose worker is killed waits
    forever for the lost part, an executor reports it.
    """
    global _scanner
    _scanner = scanner
    remaining = iter(parts)
    context = multiprocessing.get_context("fork")
    executor = ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_worker_setup)
    try:
        # Submitted parts in input order; the first is the next to be returned. Workers take
        # the submitted parts in turn, so while the first is still being read the others go
        # on with the rest.
        ahead: deque[tuple[FilePart, Future[PartResult]]] = deque()

        def submit_next() -> None:
            part = next(remaining, None)
            if part is None:
                return
            try:
                future = executor.submit(_scan_part, part)
            except BrokenProcessPool as error:
                # A worker died since the last result: the pool takes no more parts. The part
                # it was reading is in flight and is reported first, in input order.
                future = Future()
                future.set_exception(error)
            ahead.append((part, future))

        for _ in range(AHEAD_PER_JOB * jobs):
            submit_next()
        while ahead:
            part, future = ahead.popleft()
            try:
                result = future.result()
            except BrokenProcessPool:
                raise WorkerDied(
                    f"a scan worker died while reading {part.path} (bytes {part.start}-"
                    f"{part.end if part.end is not None else 'end'}); out of memory?"
                ) from None
            submit_next()
            yield result
    finally:
        # On Ctrl-C or an error, parts not started yet are dropped instead of scanned.
        executor.shutdown(wait=True, cancel_futures=True)


def _worker_setup() -> None:
    # Ctrl-C reaches the whole process group; the main process stops the scan, so workers
    # must not die on it first (each would print a traceback).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
