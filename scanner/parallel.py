"""``socpipe scan --jobs N``: parsing and Sigma matching in N worker processes.

Parsing and matching are per event and stateless, and they are most of a scan's time; the
correlation windows are not (a brute force spans files and parts of files). So workers
parse their parts of the input and return only the events that matched, with their rules,
and this process correlates, builds alerts and writes them. Results are consumed in input
order, so the alerts, their ids and the summary are those of a one-process scan; at most
``2 * jobs`` parts are in flight, so memory stays bounded whatever the input size.

Workers are forked after the rules are compiled (compiled matchers are closures, which
cannot be pickled) and inherit them.
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


@dataclass
class PartResult:
    """What a worker found in one part: read counters, events per dataset, and the events
    that matched at least one rule with the positions of those rules in the rule list."""

    size: int
    stats: ReadStats
    datasets: Counter[str] = field(default_factory=Counter)
    matches: list[tuple[Event, list[int]]] = field(default_factory=list)


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


def _scan_part(part: FilePart) -> PartResult:
    assert _scanner is not None, "worker started without a part scanner"
    return _scanner.scan(part)


def scan_parts(scanner: PartScanner, parts: Iterable[FilePart], jobs: int) -> Iterator[PartResult]:
    """Each part's result, in the order of ``parts``.

    concurrent.futures rather than multiprocessing.Pool: a Pool whose worker is killed waits
    forever for the lost part, an executor reports it. A worker that dies (a native crash in
    a parser, RE2 or orjson, the OOM killer) breaks the pool and every part in flight with
    it: those parts are scanned again one by one, each in a child of its own, so a part that
    kills its reader again is found, reported with its file and bytes, and the scan goes on
    (a crash that does not repeat costs nothing). Then a new pool takes the rest.
    """
    global _scanner
    _scanner = scanner
    remaining = iter(parts)
    while True:
        lost: list[tuple[FilePart, Future[PartResult]]] = []
        yield from _scan_with_pool(remaining, jobs, lost)
        if not lost:
            return
        log.error("a scan worker died: %d parts in flight are scanned again one by one", len(lost))
        for part, future in lost:
            finished = future.done() and not future.cancelled() and future.exception() is None
            yield future.result() if finished else _rescan(scanner, part)


def _scan_with_pool(
    remaining: Iterator[FilePart], jobs: int, lost: list[tuple[FilePart, Future[PartResult]]]
) -> Iterator[PartResult]:
    """Results from one pool of workers, until the parts run out or a worker dies: then the
    parts in flight (the failed one first) are put in ``lost`` and the pool is shut down."""
    executor = ProcessPoolExecutor(
        max_workers=jobs, mp_context=multiprocessing.get_context("fork"), initializer=_worker_setup
    )
    try:
        in_flight: deque[tuple[FilePart, Future[PartResult]]] = deque()

        def submit_next() -> None:
            part = next(remaining, None)
            if part is None:
                return
            try:
                future = executor.submit(_scan_part, part)
            except BrokenProcessPool as error:
                # A worker died since the last result: the pool takes no more parts.
                future = Future()
                future.set_exception(error)
            in_flight.append((part, future))

        for _ in range(2 * jobs):
            submit_next()
        while in_flight:
            part, future = in_flight.popleft()
            try:
                result = future.result()
            except BrokenProcessPool:
                lost.extend([(part, future), *in_flight])
                return
            submit_next()
            yield result
    finally:
        # On Ctrl-C or an error, parts not started yet are dropped instead of scanned.
        executor.shutdown(wait=True, cancel_futures=True)


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
