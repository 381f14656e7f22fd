"""``socpipe scan --jobs N``: parsing and Sigma matching in N worker processes.

Parsing and matching are per event and stateless, and they are most of a scan's time; the
correlation windows and incidents are not (a brute force spans files and parts of files).
So workers read parts of the input (a file, a byte range of a large text file, a range of
chunks of a large EVTX file) and return only the events that matched, with the positions of
their rules in the rule list; this process correlates, builds the alerts and incidents and
writes them, in input order, so the alerts, their ids and the summary are those of a
one-process scan. An event that matches nothing never leaves its worker: what crosses is
the part to read (a path and two offsets) and the few events alerts are made of.

Parts are handed out from one queue, so a worker that is done takes the next part (work
stealing), and results are kept until their turn: a slow part holds back the output, and the
workers only once ``AHEAD_PER_JOB * jobs`` parts are done or in flight, the bound that keeps
memory flat whatever the input size.

Workers are forked after the rules are loaded and after this process has scanned the
beginning of the input itself (``ScanOptions.warm_up_secs``), so that they inherit the rule
groups, prefilter indexes and matchers it built instead of each building them again.
Compiled matchers are closures, which cannot be pickled: forking is what shares them.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from functools import cached_property

from socpipe.collectors.files import FileEventReader, FilePart, LineEventIds, ReadStats
from socpipe.collectors.parsers import ParseContext
from socpipe.collectors.zones import ZoneWatch
from socpipe.core.event import Event
from socpipe.detectors.engine import SigmaEngine
from socpipe.scanner.isolation import ChildCrashed, call_in_child

log = logging.getLogger(__name__)

#: Input per unit of work: big enough that a part's bookkeeping is negligible, small enough
#: that two cores share even a single file.
DEFAULT_PART_BYTES = 4 << 20
#: Parts in flight or waiting for their turn, per worker.
AHEAD_PER_JOB = 4


@dataclass
class PartResult:
    """What a worker found in one part: read counters, events per dataset, and the events
    that matched at least one rule with the positions of those rules in the rule list."""

    size: int
    stats: ReadStats
    datasets: Counter[str] = field(default_factory=Counter)
    matches: list[tuple[Event, list[int]]] = field(default_factory=list)

    def add(self, other: PartResult) -> None:
        """Count in the result of the part read after this one."""
        self.size += other.size
        self.stats.add(other.stats)
        self.datasets.update(other.datasets)
        self.matches.extend(other.matches)


@dataclass(frozen=True)
class PartScanner:
    """Reads and matches one part; lives in each forked worker."""

    engine: SigmaEngine
    context: ParseContext
    format_name: str
    max_line_bytes: int

    @cached_property
    def _positions(self) -> dict[int, int]:
        """Rule object -> its position in the rule list, which both processes share."""
        return {id(rule): position for position, rule in enumerate(self.engine.rules)}

    @cached_property
    def _zones(self) -> ZoneWatch:
        """One per worker: a file cut in many parts is warned about once per process."""
        return ZoneWatch(self.context.zone)

    def scan(self, part: FilePart) -> PartResult:
        reader = FileEventReader(
            self.context, self.format_name, self.max_line_bytes, line_ids=False, zones=self._zones
        )
        identify = LineEventIds()
        result = PartResult(part.size, reader.stats)
        positions = self._positions
        for event in reader.read_part(part):
            result.datasets[event.get("event.dataset", "unknown")] += 1
            if rules := self.engine.match(event):
                identify(event)
                result.matches.append((event, [positions[id(rule)] for rule in rules]))
        return result


# The scanner the forked workers inherit (set just before the pool forks them).
_scanner: PartScanner | None = None


def _scan_batch(batch: list[FilePart]) -> PartResult:
    assert _scanner is not None, "worker started without a part scanner"
    result = PartResult(0, ReadStats())
    for part in batch:
        result.add(_scanner.scan(part))
    return result


def batches(parts: Iterable[FilePart], batch_bytes: int) -> Iterator[list[FilePart]]:
    """Consecutive parts together until they cover ``batch_bytes`` (0: each part alone): a
    small file handed over alone cost as much in the hand-over (a future, a pickled result)
    as reading it, on inputs of thousands of small files."""
    batch: list[FilePart] = []
    size = 0
    for part in parts:
        batch.append(part)
        size += part.size
        if size >= batch_bytes:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


Lost = list[tuple[list[FilePart], "Future[PartResult]"]]


def scan_parts(
    scanner: PartScanner, parts: Iterable[FilePart], jobs: int, batch_bytes: int = 0
) -> Iterator[PartResult]:
    """The results of ``parts`` in their order, one per batch of parts (``batches``).

    concurrent.futures rather than multiprocessing.Pool: a Pool whose worker is killed waits
    forever for the lost part, an executor reports it. A worker that dies (a native crash in
    a parser, RE2 or orjson, the OOM killer) breaks the pool and every batch in flight with
    it: the parts of those batches are scanned again one by one, each in a child of its own,
    so a part that kills its reader again is found, reported with its file and bytes, and the
    scan goes on (a crash that does not repeat costs nothing). Then a new pool takes the rest.
    """
    global _scanner
    _scanner = scanner
    remaining = batches(parts, batch_bytes)
    while True:
        lost: Lost = []
        yield from _scan_with_pool(remaining, jobs, lost)
        if not lost:
            return
        log.error(
            "a scan worker died: %d parts in flight are scanned again one by one",
            sum(len(batch) for batch, _ in lost),
        )
        for batch, future in lost:
            finished = future.done() and not future.cancelled() and future.exception() is None
            yield future.result() if finished else _rescan_batch(scanner, batch)


def _scan_with_pool(
    remaining: Iterator[list[FilePart]], jobs: int, lost: Lost
) -> Iterator[PartResult]:
    """Results from one pool of workers, until the parts run out or a worker dies: then the
    batches in flight (the failed one first) are put in ``lost`` and the pool is shut down."""
    executor = ProcessPoolExecutor(
        max_workers=jobs, mp_context=multiprocessing.get_context("fork"), initializer=_worker_setup
    )
    try:
        # Submitted batches in input order; the first is the next to be returned. Workers
        # take the submitted batches in turn, so while the first is still being read the
        # others go on with the rest.
        ahead: deque[tuple[list[FilePart], Future[PartResult]]] = deque()

        def submit_next() -> None:
            batch = next(remaining, None)
            if batch is None:
                return
            try:
                future = executor.submit(_scan_batch, batch)
            except BrokenProcessPool as error:
                # A worker died since the last result: the pool takes no more parts.
                future = Future()
                future.set_exception(error)
            ahead.append((batch, future))

        for _ in range(AHEAD_PER_JOB * jobs):
            submit_next()
        while ahead:
            batch, future = ahead.popleft()
            try:
                result = future.result()
            except BrokenProcessPool:
                lost.extend([(batch, future), *ahead])
                return
            submit_next()
            yield result
    finally:
        # On Ctrl-C or an error, parts not started yet are dropped instead of scanned.
        executor.shutdown(wait=True, cancel_futures=True)


def _rescan_batch(scanner: PartScanner, batch: list[FilePart]) -> PartResult:
    """The parts of a lost batch, each scanned again in a child of its own."""
    result = PartResult(0, ReadStats())
    for part in batch:
        result.add(_rescan(scanner, part))
    return result


def _rescan(scanner: PartScanner, part: FilePart) -> PartResult:
    """A part scanned in a child of its own; reported as unreadable if that dies too."""
    where = f"{part.path} (bytes {part.start}-{part.end if part.end is not None else 'end'})"
    try:
        return call_in_child(where, scanner.scan, part)
    except ChildCrashed as crash:
        log.error("scan worker crashed again on %s: %s; not scanned", where, crash.reason)
        stats = ReadStats()
        stats.unreadable_files.append(f"{where}: {crash.reason}; the part is not scanned")
        return PartResult(part.size, stats)


def _worker_setup() -> None:
    # Ctrl-C reaches the whole process group; the main process stops the scan, so workers
    # must not die on it first (each would print a traceback).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
